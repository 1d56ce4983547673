"""The web UI's built assets, served at ``/`` by ``loopline server``.

The assets are built from ``ui/`` into ``static/`` when the package is built
(``hatch_build.py``) or by ``make ui``. Hashed files under ``/assets/`` are cached
for a year; every other path that is not the server's own (``/api``, ``/ajax-api``,
``/health``, ``/docs``, ``/openapi.json``...) answers ``index.html``, so a link
to any view of the single-page app opens that view.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from loopline.server.errors import error_response

__all__ = ["STATIC_DIR", "mount_ui"]

STATIC_DIR = Path(__file__).with_name("static")

# Paths the server answers itself: an unknown path under these is a 404, never the app.
_SERVER_PREFIXES = ("api/", "ajax-api/", "health", "docs", "redoc", "openapi.json", "metrics")
_IMMUTABLE = "public, max-age=31536000, immutable"

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>loopline</title>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto">
<h1>loopline</h1><p>The server is running, but this installation carries no web UI
assets. Build them with <code>make ui</code> (needs node and npm), or install loopline from
a wheel, which ships them. The REST API is at <a href="/docs">/docs</a>.</p></body>"""


class _HashedAssets(StaticFiles):
    """Vite's output names carry a content hash, so a file never changes under its name.

    A client that accepts gzip gets the ``.gz`` sibling the build wrote next to a file.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        accepts_gzip = any(
            name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"]
        )
        response: Response | None = None
        if accepts_gzip and not path.endswith(".gz"):
            try:
                response = await super().get_response(path + ".gz", scope)
            except HTTPException:  # no compressed copy: serve the file itself
                response = None
            if response is not None and response.status_code == 200:
                media = mimetypes.guess_type(path)[0] or "application/octet-stream"
                response.headers["content-type"] = media
                response.headers["content-encoding"] = "gzip"
                response.headers["vary"] = "Accept-Encoding"
            else:
                response = None
        if response is None:
            response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = _IMMUTABLE
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the built UI when the package carries it; the API works without it."""
    from loopline.server.api.ui_support import router

    app.include_router(router)
    index = STATIC_DIR / "index.html"
    assets = STATIC_DIR / "assets"
    if assets.is_dir():
        app.mount("/assets", _HashedAssets(directory=assets), name="ui-assets")

    @app.get("/{path:path}", include_in_schema=False)
    def single_page_app(path: str, request: Request) -> Response:
        if path.startswith(_SERVER_PREFIXES):
            return error_response("ENDPOINT_NOT_FOUND", f"no route {request.url.path}", 404)
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT)
        # index.html names the current hashed assets: it must be revalidated each time.
        return FileResponse(index, headers={"cache-control": "no-cache"})

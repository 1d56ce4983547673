"""MLflow's artifact proxy (``/mlflow-artifacts/artifacts/...``) over run artifacts.

MLflow clients see a run's artifact root as
``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`` and resolve it to this
proxy; a proxy path ``<experiment_id>/<run_id>/artifacts/<rel>`` is the run's
artifact ``<rel>``. Paths that could leave their root (``..``, absolute, NUL)
are refused with 400 before anything is read or stored.

>>> resolve("1/" + "ab" * 16 + "/artifacts/plots/roc.png")
Target(run_id='abababababababababababababababab', path='plots/roc.png')
>>> resolve("1/models/m-1/artifacts") is None
True
"""

import mimetypes
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.errors import InvalidArgumentError, LooplineError, NotFoundError
from loopline.server.mlflow_compat import messages as m
from loopline.server.mlflow_compat._edge import Svc, area_router, reply
from loopline.server.mlflow_compat.convert import artifact_uri, files_json
from loopline.store.paths import safe_relpath

__all__ = ["Target", "listing", "proxy", "resolve"]

proxy = area_router("/mlflow-artifacts")
listing = area_router("/mlflow")

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_CHUNK = 1024 * 1024
_IN_MEMORY = 4 * 1024 * 1024  # uploads up to this size are not spilled to disk
# Types a browser would run or render as a page: served as text instead.
_ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/javascript",
        "application/javascript",
    }
)
_RUN_PATHS_HINT = "loopline stores run artifacts: <experiment_id>/<run_id>/artifacts/<path>"


@dataclass(frozen=True, slots=True)
class Target:
    """A run's artifact (``path`` is empty for the run's artifact root)."""

    run_id: str
    path: str


def resolve(raw: str) -> Target | None:
    """The run artifact a proxy path names, ``None`` for paths outside any run.

    Raises :class:`~loopline.errors.UnsafePathError` (400) for unsafe paths.
    """
    parts = safe_relpath(raw, allow_empty=True).split("/")
    if len(parts) < 3 or not parts[0].isdigit() or parts[2] != "artifacts":
        return None
    if not _RUN_ID.fullmatch(parts[1]):
        return None
    return Target(parts[1], "/".join(parts[3:]))


@proxy.get("/artifacts")
def list_proxied(svc: Svc, path: str = "") -> Response:
    target = resolve(path)
    if target is None:  # the proxy's root and experiment folders: nothing to show
        return reply({"files": []})
    entries = svc.list_artifacts(target.run_id, target.path)
    return reply({"files": files_json(entries, basename=True)})


@proxy.get("/artifacts/{artifact_path:path}")
def download(artifact_path: str, svc: Svc) -> Response:
    target = resolve(artifact_path)
    if target is None or not target.path:
        raise NotFoundError(f"artifact {artifact_path!r} does not exist", hint=_RUN_PATHS_HINT)
    digest, size = svc.artifact_digest(target.run_id, target.path)
    handle = svc.blobs.open(digest)
    kind = mimetypes.guess_type(target.path)[0] or "application/octet-stream"
    return StreamingResponse(
        _read(handle),
        media_type="text/plain" if kind in _ACTIVE_TYPES else kind,
        headers={"Content-Length": str(size), "X-Content-Type-Options": "nosniff"},
    )


def _read(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


@proxy.put("/artifacts/{artifact_path:path}")
async def upload(artifact_path: str, request: Request, svc: Svc) -> Response:
    """Store the body as the artifact (the app's body limit applies while it streams in)."""
    target = resolve(artifact_path)
    if target is None or not target.path:
        raise InvalidArgumentError(
            f"cannot store an artifact at {artifact_path!r}", hint=_RUN_PATHS_HINT
        )
    source = await _receive(request)
    try:
        await run_in_threadpool(svc.put_artifact, target.run_id, target.path, source)
    finally:
        if isinstance(source, Path):
            source.unlink(missing_ok=True)
    return reply()


async def _receive(request: Request) -> bytes | Path:
    """The request body: bytes when small, else a temporary file (removed by the caller)."""
    buffer = bytearray()
    spill: BinaryIO | None = None
    spill_path = Path()
    try:
        async for chunk in request.stream():
            if spill is None and len(buffer) + len(chunk) <= _IN_MEMORY:
                buffer += chunk
                continue
            if spill is None:
                fd, name = tempfile.mkstemp(prefix="loopline-upload-")
                spill, spill_path = os.fdopen(fd, "wb"), Path(name)
                spill.write(buffer)
            spill.write(chunk)
    except BaseException:
        if spill is not None:
            spill.close()
            spill_path.unlink(missing_ok=True)
        raise
    if spill is None:
        return bytes(buffer)
    spill.close()
    return spill_path


@proxy.delete("/artifacts/{artifact_path:path}")
def delete(artifact_path: str, svc: Svc) -> Response:
    resolve(artifact_path)
    raise LooplineError(
        "deleting artifacts through the MLflow API is not supported",
        hint="artifacts are removed with their run (delete the run, then garbage-collect)",
        code="METHOD_NOT_ALLOWED",
    )


@listing.get("/artifacts/list")
def list_run_artifacts(
    svc: Svc,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: str = "",
) -> Response:
    """The run's artifacts under ``path``, with run-relative paths (MLflow's UI uses this)."""
    run = svc.get_run(m.RunRef(run_id=run_id, run_uuid=run_uuid).target())
    entries = svc.list_artifacts(run.info.run_id, path)
    return reply(
        {
            "root_uri": artifact_uri(run.info.experiment_id, run.info.run_id),
            "files": files_json(entries, basename=False),
        }
    )

"""The server's app factory.

Each capability contributes routers; this module only assembles them, installs
the error edge and the request-size limit, and holds the shared service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from loopline._version import __version__
from loopline.server.api.limits import BodyLimitMiddleware
from loopline.server.errors import install_error_handlers

if TYPE_CHECKING:
    from loopline.tracking.service import TrackingService

__all__ = ["create_app"]


def create_app(service: TrackingService, *, max_body_bytes: int = 256 * 1024 * 1024) -> FastAPI:
    """A FastAPI app answering for ``service`` (the native API, MLflow's API, health)."""
    app = FastAPI(
        title="loopline",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.state.max_body_bytes = max_body_bytes
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)  # reads app.state.max_body_bytes per request
    # Outermost: the permission check (enforcing with LOOPLINE_AUTH / `server --auth`).
    from loopline.auth.middleware import install_auth

    install_auth(app)

    from loopline.server.api import router as native_router
    from loopline.server.api.collab import router as collab_router
    from loopline.server.api.data import router as data_router
    from loopline.server.api.deployments import router as deployments_router
    from loopline.server.api.monitors import router as monitors_router
    from loopline.server.api.pipelines import router as pipelines_router
    from loopline.server.api.registry import router as registry_router
    from loopline.server.mlflow_compat import routers as mlflow_routers
    from loopline.server.ui import mount_ui

    app.include_router(native_router)
    # The registry and data routers carry their full /api/v1/... prefixes.
    app.include_router(registry_router)
    app.include_router(data_router)
    app.include_router(pipelines_router)
    app.include_router(deployments_router)
    app.include_router(monitors_router)
    app.include_router(collab_router)
    for router in mlflow_routers():
        app.include_router(router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Last: the UI's catch-all routes must not shadow the API.
    mount_ui(app)

    return app

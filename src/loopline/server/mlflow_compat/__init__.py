"""MLflow's REST protocol, so the official ``mlflow`` client works against ``loopline server``.

Served under ``/api/2.0`` (the Python client) and ``/ajax-api/2.0`` (MLflow's web
UI), plus ``/api/3.0/mlflow/server-info``. Modules by area: ``experiments``,
``runs``, ``writes`` (logging), ``artifacts`` (the ``mlflow-artifacts`` proxy);
``convert`` maps entities to MLflow's JSON and ``messages`` holds request bodies.

Every answer follows MLflow's wire rules: errors are ``{"error_code", "message"}``
with MLflow's status codes, and nothing a retry would repeat answers 5xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["routers"]

_PREFIXES = ("/api", "/ajax-api")


def routers() -> list[APIRouter]:
    """The routers the app includes; each is mounted once per prefix."""
    from fastapi import APIRouter

    from loopline.server.mlflow_compat import (
        artifacts,
        experiments,
        info,
        logged_models,
        registry,
        runs,
        writes,
    )

    v2 = (
        experiments.router,
        runs.router,
        writes.router,
        logged_models.router,
        registry.router,
        logged_models.proxy,  # before artifacts.proxy: it takes the models' proxy paths
        artifacts.listing,
        artifacts.proxy,
    )
    mounted: list[APIRouter] = []
    for prefix in _PREFIXES:
        schema = prefix == "/api"  # the UI's copies stay out of the OpenAPI document
        outer = APIRouter(include_in_schema=schema)
        for inner in v2:
            outer.include_router(inner, prefix=f"{prefix}/2.0", tags=["mlflow"])
        outer.include_router(info.router, prefix=f"{prefix}/3.0", tags=["mlflow"])
        mounted.append(outer)
    return mounted

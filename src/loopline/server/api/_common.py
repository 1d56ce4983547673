"""Helpers shared by the native API's route modules: JSON answers and dependencies."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends
from starlette.responses import Response

from loopline.server.deps import Caller, caller, service
from loopline.tracking.service import TrackingService

__all__ = ["OK", "CallerDep", "ServiceDep", "json_response"]

# Every route takes ``svc: ServiceDep`` (which resolves the caller first); routers
# also list ``Depends(caller)`` so a route without a service still has a caller.
ServiceDep = Annotated[TrackingService, Depends(service)]
CallerDep = Annotated[Caller, Depends(caller)]

_OK_BODY = b"{}"


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON answer serialised by orjson (entities are turned into dicts first)."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def OK() -> Response:
    """The empty JSON object, for operations that return nothing."""
    return Response(_OK_BODY, media_type="application/json")

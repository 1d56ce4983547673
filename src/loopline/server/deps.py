"""Request dependencies shared by every route: who is calling, and the service acting for them.

Every route, native or MLflow-compatible, resolves its caller through
:func:`caller`; enforcement of roles plugs in here (the collaboration work) without
touching the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from loopline.tracking.service import TrackingService

__all__ = ["Caller", "caller", "service"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated (or, with auth off, declared) identity behind a request."""

    name: str
    project: str = "default"
    authenticated: bool = False


def caller(request: Request) -> Caller:
    """Resolve the caller. With auth off, the ``X-Loopline-User`` header names them."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    name = request.headers.get("x-loopline-user") or "anonymous"
    project = request.headers.get("x-loopline-project") or "default"
    found = Caller(name=name[:256], project=project[:256])
    request.state.caller = found
    return found


def service(request: Request) -> TrackingService:
    """The tracking service acting for the caller."""
    who = caller(request)
    base: TrackingService = request.app.state.service
    return base.for_user(who.name, who.project)

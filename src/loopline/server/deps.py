"""Request dependencies shared by every route: who is calling, and the service acting for them.

Every route, native or MLflow-compatible, resolves its caller through
:func:`caller`. With enforcement on (``loopline server --auth``) the permission
check in :mod:`loopline.auth.middleware` has already authenticated and authorised
the request and left the caller on ``request.state``; with it off, the
``X-Loopline-User`` header declares who is calling (a laptop's server on loopback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from loopline.errors import UnauthenticatedError

if TYPE_CHECKING:
    from loopline.auth.middleware import AuthConfig
    from loopline.auth.principal import Principal
    from loopline.store.metadata import Database
    from loopline.tracking.service import TrackingService

__all__ = [
    "Caller",
    "auth_config",
    "auth_enabled",
    "caller",
    "principal",
    "readable_project_ids",
    "service",
]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated (or, with auth off, declared) identity behind a request."""

    name: str
    project: str = "default"
    authenticated: bool = False


def auth_config(request: Request) -> AuthConfig | None:
    """The server's permission-check settings (None when the app has no check installed)."""
    config: AuthConfig | None = getattr(request.app.state, "auth", None)
    return config


def auth_enabled(request: Request) -> bool:
    config = auth_config(request)
    return bool(config is not None and config.enabled)


def caller(request: Request) -> Caller:
    """Resolve the caller. With auth off, the ``X-Loopline-User`` header names them."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    if auth_enabled(request):
        # The permission check sets the caller on every request it lets through; a
        # route reached without one must not fall back to a declared identity.
        raise UnauthenticatedError("this server requires authentication")
    name = request.headers.get("x-loopline-user") or "anonymous"
    project = request.headers.get("x-loopline-project") or "default"
    found = Caller(name=name[:256], project=project[:256])
    request.state.caller = found
    return found


def principal(request: Request) -> Principal | None:
    """The authenticated user behind the request (None with auth off or when anonymous)."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None or not found.authenticated:
        return None
    return found


def service(request: Request) -> TrackingService:
    """The tracking service acting for the caller."""
    who = caller(request)
    base: TrackingService = request.app.state.service
    return base.for_user(who.name, who.project)


def readable_project_ids(request: Request, db: Database) -> list[int] | None:
    """Ids of the projects the caller may read; None when they may read every project.

    With enforcement off, or for server administrators, nothing is hidden; otherwise
    only projects where the caller is at least a viewer (possibly none).
    """
    if not auth_enabled(request):
        return None
    found = principal(request)
    if found is None:
        raise UnauthenticatedError("this server requires authentication")
    if found.is_admin:
        return None
    import sqlalchemy as sa

    from loopline.auth.roles import Role
    from loopline.store.metadata.schema import projects

    names = [name for name, role in found.roles.items() if role >= Role.VIEWER]
    if not names:
        return []
    with db.read() as conn:
        return list(
            conn.execute(sa.select(projects.c.id).where(projects.c.name.in_(names))).scalars()
        )

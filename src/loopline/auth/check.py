"""A reusable token check for servers other than ``loopline server`` (``loopline serve --auth``).

>>> import tempfile
>>> from loopline.config import Settings
>>> from loopline.store.metadata import Database
>>> from loopline.auth.store import AuthStore
>>> settings = Settings.from_env({"LOOPLINE_HOME": tempfile.mkdtemp()})
>>> store = AuthStore(Database(settings.metadata_url))
>>> _ = store.create_user("svc", None)
>>> token, _ = store.create_token("svc")
>>> verify_bearer(settings, f"Bearer {token}").name
'svc'
>>> verify_bearer(settings, None)
Traceback (most recent call last):
...
loopline.errors.UnauthenticatedError: a token is required (send `Authorization: Bearer <token>`; create one with `loopline tokens create`)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from loopline.auth.roles import Role
from loopline.errors import PermissionDeniedError, UnauthenticatedError

if TYPE_CHECKING:
    from loopline.auth.principal import Principal
    from loopline.auth.store import AuthStore
    from loopline.config import Settings

__all__ = ["verify_bearer"]

_stores: dict[str, AuthStore] = {}
_lock = threading.Lock()
_HINT = "send `Authorization: Bearer <token>`; create one with `loopline tokens create`"


def _store(settings: Settings) -> AuthStore:
    from loopline.auth.store import AuthStore
    from loopline.store.metadata import Database

    url = settings.metadata_url
    with _lock:
        if url not in _stores:
            _stores[url] = AuthStore(Database(url))
        return _stores[url]


def verify_bearer(
    settings: Settings,
    header: str | None,
    *,
    project: str | None = None,
    role: Role = Role.VIEWER,
) -> Principal:
    """The user an ``Authorization`` header's token belongs to.

    Raises :class:`~loopline.errors.UnauthenticatedError` (401) for a missing,
    unknown, revoked or expired token, and
    :class:`~loopline.errors.PermissionDeniedError` (403) when ``project`` is given
    and the user lacks ``role`` in it. Thread-safe; one database engine per store.
    """
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("a token is required", hint=_HINT)
    found = _store(settings).authenticate_token(token.strip())
    if found is None:
        raise UnauthenticatedError("the token is unknown, revoked or expired", hint=_HINT)
    if project is not None and found.role_in(project) < role:
        raise PermissionDeniedError(
            f"{found.name!r} needs the {role.label} role in project {project!r}"
        )
    return found

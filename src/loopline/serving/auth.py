"""Bearer tokens on the inference server (``loopline serve --auth``).

Tokens are the ones ``loopline tokens create`` issues, checked by
:func:`loopline.auth.check.verify_bearer` against the store the server serves from:
the token's user needs at least the viewer role in the server's project. A token
found good is remembered for a few seconds (by its digest, never in clear), so a
busy client costs one database read per interval instead of one per request; a
revoked token therefore stops working within ``ttl`` seconds. The first check of a
token runs in a thread: the event loop never waits on the database.

>>> decide_auth("127.0.0.1", None), decide_auth("0.0.0.0", None), decide_auth("::1", True)
(False, True, True)
>>> decide_auth("127.0.0.1", None, default=True), decide_auth("0.0.0.0", False, default=True)
(True, False)
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.config import Settings

__all__ = ["TokenAuthorizer", "decide_auth"]

_MAX_REMEMBERED = 10_000


def decide_auth(host: str, auth: bool | None, default: bool | None = None) -> bool:
    """``--auth``/``--no-auth`` as given, else ``default`` (``LOOPLINE_AUTH``); with
    neither, tokens are required off loopback."""
    if auth is not None:
        return auth
    if default is not None:
        return default
    from loopline.auth.bind import is_loopback

    return not is_loopback(host)


class TokenAuthorizer:
    """The inference app's ``authorize`` hook: raises 401/403 errors, else returns."""

    def __init__(self, settings: Settings, *, ttl: float = 5.0) -> None:
        self.settings = settings
        self.ttl = ttl
        self._good: dict[bytes, float] = {}

    async def __call__(self, scope: dict[str, Any]) -> None:
        header = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value
                break
        key = hashlib.blake2b(header, digest_size=20).digest()
        now = time.monotonic()
        until = self._good.get(key)
        if until is not None and until > now:
            return
        await asyncio.to_thread(self._verify, header.decode("latin-1") or None)
        if len(self._good) >= _MAX_REMEMBERED:
            self._good = {k: t for k, t in self._good.items() if t > now}
            if len(self._good) >= _MAX_REMEMBERED:
                self._good.clear()
        self._good[key] = now + self.ttl

    def _verify(self, header: str | None) -> None:
        from loopline.auth.check import verify_bearer
        from loopline.auth.roles import Role

        verify_bearer(self.settings, header, project=self.settings.project, role=Role.VIEWER)

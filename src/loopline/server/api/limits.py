"""The request-size limit, as a pure ASGI middleware.

The limit is ``app.state.max_body_bytes`` (``None`` or 0: no limit). A declared
``Content-Length`` over it is refused before the body is read; a body without one
(chunked) is counted as it streams in, and reading past the limit raises a 413
from whichever ``await request.body()`` or ``request.stream()`` crossed it. Both
answer ``{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "... the limit is N bytes"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from loopline.server.errors import error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "limit_message"]

_HINT = "split the request (smaller batches), or start the server with a larger body limit"


def limit_message(limit: int, size: int | None = None) -> str:
    """The message of a 413: what arrived and what the limit is.

    >>> limit_message(10, 12)
    'the request body is 12 bytes; the limit is 10 bytes'
    """
    what = f"is {size} bytes" if size is not None else "is larger than that"
    return f"the request body {what}; the limit is {limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``app.state.max_body_bytes`` with a 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope)
        if not limit:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # The unread body is discarded by the server, so the client still reads this.
            response = error_response(
                "REQUEST_LIMIT_EXCEEDED", limit_message(limit, declared), 413, hint=_HINT
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes HTTPException through body parsing; the error edge
                    # turns it into REQUEST_LIMIT_EXCEEDED with this message.
                    raise HTTPException(413, detail=limit_message(limit))
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    def _limit(scope: Scope) -> int | None:
        if scope["type"] != "http":
            return None
        app = scope.get("app")
        state = getattr(app, "state", None)
        limit: int | None = getattr(state, "max_body_bytes", None)
        return limit

"""What every MLflow-compatible route shares: its route class, its dependencies,
JSON replies and offset page tokens.

The MLflow client retries 5xx answers for minutes, so an answer a retry would only
repeat must be a 4xx. :class:`MlflowRoute` enforces that for exceptions nobody
anticipated: loopline's own errors keep their codes (mapped at the app's error
edge), anything else is logged and answered 400.
"""

import base64
import binascii
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from loopline.errors import InvalidArgumentError, LooplineError, NotFoundError
from loopline.server.deps import Caller, caller, service
from loopline.server.errors import error_response
from loopline.tracking.service import TrackingService

__all__ = [
    "CallerDep",
    "MlflowRoute",
    "Svc",
    "area_router",
    "decode_offset",
    "encode_offset",
    "experiment_id",
    "page",
    "reply",
]

_log = logging.getLogger("loopline.server.mlflow")

Svc = Annotated[TrackingService, Depends(service)]
"""The tracking service acting for the caller (each route depends on it or on CallerDep)."""
CallerDep = Annotated[Caller, Depends(caller)]

# Exceptions that, raised while handling a request, almost always come from its input
# (a number too large for the database, text that does not encode, a value that does not parse).
_INPUT_ERRORS = (ValueError, OverflowError, UnicodeError)
_MAX_ID = 2**63 - 1


class MlflowRoute(APIRoute):
    """A route whose unexpected exceptions answer 4xx, never a retried 5xx."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (LooplineError, HTTPException, RequestValidationError):
                raise
            except ClientDisconnect:  # nobody is left to read the answer
                return error_response("BAD_REQUEST", "the client disconnected mid-request")
            except _INPUT_ERRORS as exc:
                _log.info("MLflow request %s refused: %r", request.url.path, exc)
                return error_response(
                    "INVALID_PARAMETER_VALUE",
                    f"{request.url.path}: the request could not be processed: {exc}",
                )
            except Exception as exc:
                _log.exception("MLflow request %s failed", request.url.path)
                return error_response(
                    "INTERNAL_ERROR",
                    f"{request.url.path} failed on the server ({type(exc).__name__}: {exc}); "
                    "the error is logged there and retrying will not help",
                    status=400,
                )

        return guarded


def area_router(prefix: str) -> APIRouter:
    """A router for one area of the API: every route resolves the caller, errors stay 4xx."""
    return APIRouter(prefix=prefix, route_class=MlflowRoute, dependencies=[Depends(caller)])


def experiment_id(value: str) -> str:
    """``value`` when it can name an experiment (a decimal id within 64 bits).

    Anything else names none: ``RESOURCE_DOES_NOT_EXIST``, as for an unknown id.

    >>> experiment_id("12")
    '12'
    """
    if not (value.isascii() and value.isdigit() and int(value) <= _MAX_ID):
        raise NotFoundError(
            f"experiment {value[:40]!r} does not exist", hint="experiment ids are integers: '0'"
        )
    return value


def reply(body: dict[str, Any] | None = None) -> Response:
    """A JSON answer (MLflow answers ``{}`` where it has nothing to say)."""
    return Response(orjson.dumps(body or {}), media_type="application/json")


def encode_offset(offset: int) -> str:
    """An opaque page token for a position in a list.

    >>> decode_offset(encode_offset(42))
    42
    """
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def decode_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidArgumentError(
            f"invalid page_token {token[:40]!r}",
            hint="pass back the next_page_token of the previous answer unchanged",
        )
    return offset


def page(
    items: list[Any], max_results: int | None, token: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token of the next (``None`` on the last).

    >>> page([1, 2, 3], 2, None)[0], page([1, 2, 3], 2, encode_offset(2))
    ([1, 2], ([3], None))
    """
    start = decode_offset(token)
    if max_results is None:
        return items[start:], None
    if max_results <= 0:
        raise InvalidArgumentError(
            f"max_results must be a positive integer, got {max_results}",
        )
    end = start + max_results
    return items[start:end], encode_offset(end) if end < len(items) else None

"""The edge where loopline errors become HTTP answers.

MLflow's wire rules: the body is ``{"error_code": ..., "message": ...}``; unknown
ids answer 404; errors a retry would repeat never answer 5xx (the MLflow client
retries 5xx for minutes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loopline.errors import LooplineError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["STATUS_BY_CODE", "error_response", "install_error_handlers"]

STATUS_BY_CODE: dict[str, int] = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "FEATURE_DISABLED": 501,
    "CHECK_FAILED": 409,
    "REQUEST_LIMIT_EXCEEDED": 413,
    "DATA_LOSS": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


def error_response(
    code: str, message: str, status: int | None = None, hint: str | None = None
) -> Response:
    body: dict[str, str] = {"error_code": code, "message": message}
    if hint:
        body["hint"] = hint
    return Response(
        orjson.dumps(body),
        status_code=status or STATUS_BY_CODE.get(code, 500),
        media_type="application/json",
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_loopline_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LooplineError)
        return error_response(exc.code, exc.message, hint=exc.hint)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg"))
        )
        return error_response("INVALID_PARAMETER_VALUE", message)

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 413: "REQUEST_LIMIT_EXCEEDED"}.get(
            exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        )
        return error_response(code, str(exc.detail), exc.status_code)

    app.add_exception_handler(LooplineError, on_loopline_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

"""The edge where loopline errors become HTTP answers.

MLflow's wire rules: the body is ``{"error_code": ..., "message": ...}``; unknown
ids answer 404; errors a retry would repeat never answer 5xx (the MLflow client
retries 5xx for minutes).

The OpenAPI document says so too: every operation lists the error answers the edge
gives (with the ``Error`` body) instead of FastAPI's 422, which this server never
sends (a request that does not validate is a 400 ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loopline.errors import LooplineError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["ERROR_SCHEMA", "STATUS_BY_CODE", "error_response", "install_error_handlers"]

STATUS_BY_CODE: dict[str, int] = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "FEATURE_DISABLED": 501,
    # A method the server will never perform on this resource (e.g. deleting artifacts
    # through MLflow's proxy): a 4xx, so no client retries it.
    "METHOD_NOT_ALLOWED": 405,
    "CHECK_FAILED": 409,
    "REQUEST_LIMIT_EXCEEDED": 413,
    "DATA_LOSS": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "description": "MLflow's error code vocabulary"},
        "message": {"type": "string", "description": "what went wrong"},
        "hint": {"type": "string", "description": "what to do next"},
    },
}
_DOCUMENTED_ERRORS = {
    "400": "Invalid request (INVALID_PARAMETER_VALUE, BAD_REQUEST, INVALID_STATE...)",
    "401": "Authentication required or credentials not valid (UNAUTHENTICATED)",
    "403": "The caller lacks the role (PERMISSION_DENIED)",
    "404": "No such object or endpoint (RESOURCE_DOES_NOT_EXIST, ENDPOINT_NOT_FOUND)",
    "405": "Method not allowed on this path",
    "409": "A check failed (CHECK_FAILED)",
    "413": "The request body is over the server's limit (REQUEST_LIMIT_EXCEEDED)",
    "429": "Too many requests (REQUEST_LIMIT_EXCEEDED; see Retry-After)",
    "default": "Any other error, with the same body",
}


def _document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the error answers of every operation."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, description in _DOCUMENTED_ERRORS.items():
                    responses.setdefault(status, {"description": description, "content": content})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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

    _document_errors(app)
    app.add_exception_handler(LooplineError, on_loopline_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

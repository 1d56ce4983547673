"""The inference server as a bare ASGI app (no framework on the hot path).

A FastAPI route costs about a third of this machine's request budget before any
model runs, so requests are dispatched on their path by hand, bodies parsed with
orjson and answered with prebuilt headers.

Routes: Open Inference Protocol V2 (``/v2/health/live``, ``/v2/health/ready``,
``/v2``, ``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``.../infer``),
MLflow/SageMaker scoring (``GET /ping``, ``POST /invocations[?model=NAME]``),
``GET /metrics``, ``GET /health`` and ``POST /v1/feedback``.

Authentication plugs in at one place: ``authorize(scope)``, awaited before every
route that reads or predicts with a model (health, readiness and metrics stay open).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from loopline.errors import InvalidArgumentError, LooplineError
from loopline.serving import invocations, v2

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from loopline.serving.endpoint import Endpoint, Slot
    from loopline.serving.metrics import Metrics
    from loopline.serving.model import ServedModel

    Scope = dict[str, Any]
    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]
    Authorizer = Callable[[Scope], Awaitable[None]]

__all__ = ["InferenceApp"]

_JSON = b"application/json"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "REQUEST_LIMIT_EXCEEDED": 413,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
    "DATA_LOSS": 500,
}


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


def _from_error(exc: LooplineError) -> _HttpError:
    return _HttpError(_STATUS.get(exc.code, 400), exc.code, exc.message, exc.hint)


class InferenceApp:
    """Serves ``endpoints`` (name -> :class:`Endpoint`); the first answers ``/invocations``."""

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        *,
        metrics: Metrics | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
        authorize: Authorizer | None = None,
        on_startup: list[Callable[[], None]] | None = None,
        on_shutdown: list[Callable[[], None]] | None = None,
    ) -> None:
        from loopline.serving.metrics import Metrics

        self.endpoints = endpoints
        self.metrics = metrics or Metrics()
        self.max_body_bytes = max_body_bytes
        self.authorize = authorize
        self.on_startup = list(on_startup or [])
        self.on_shutdown = list(on_shutdown or [])
        self._background: set[asyncio.Task[None]] = set()
        for endpoint in endpoints.values():
            endpoint.on_batch = self.metrics.batch

    # -- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id(scope)
        try:
            await self._dispatch(scope, receive, send, request_id)
        except _HttpError as exc:
            await _error(send, exc, request_id)
        except LooplineError as exc:
            await _error(send, _from_error(exc), request_id)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        hook()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        hook()
                    except Exception:  # a failing hook must not keep the others from running
                        continue
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v2/models/"):
            await self._v2_model(scope, receive, send, rid, path[len("/v2/models/") :], method)
            return
        if method == "POST" and path == "/invocations":
            await self._invocations(scope, receive, send, rid)
            return
        if method == "POST" and path == "/v1/feedback":
            await self._feedback(scope, receive, send, rid)
            return
        if method in ("GET", "HEAD"):
            if path in ("/v2/health/live", "/health", "/ping"):
                await _json(send, 200, {"live": True} if path != "/ping" else {}, rid)
                return
            if path == "/v2/health/ready":
                ready = all(e.ready for e in self.endpoints.values())
                await _json(send, 200 if ready else 503, {"ready": ready}, rid)
                return
            if path == "/v2":
                await _json(send, 200, _server_metadata(), rid)
                return
            if path == "/metrics":
                from loopline.serving.metrics import CONTENT_TYPE

                await _raw(send, 200, self.metrics.render(), CONTENT_TYPE.encode(), rid)
                return
        raise _HttpError(404, "ENDPOINT_NOT_FOUND", f"no route {method} {path}")

    # -- V2 ------------------------------------------------------------------------------
    async def _v2_model(
        self, scope: Scope, receive: Receive, send: Send, rid: str, rest: str, method: str
    ) -> None:
        action = ""
        for suffix in ("/infer", "/ready"):
            if rest.endswith(suffix):
                rest, action = rest[: -len(suffix)], suffix[1:]
                break
        version: str | None = None
        name, sep, found = rest.rpartition("/versions/")
        if sep and found and "/" not in found:
            rest, version = name, found
        endpoint = self._endpoint(rest)
        if action == "ready" and method in ("GET", "HEAD"):
            ready = endpoint.ready and (version is None or endpoint.slot_for_version(version))
            await _json(send, 200 if ready else 503, {"name": rest, "ready": bool(ready)}, rid)
            return
        if self.authorize is not None:
            await self.authorize(scope)
        if action == "infer" and method == "POST":
            slot = self._slot(endpoint, version)
            await self._infer(scope, receive, send, rid, endpoint, slot, "v2")
            return
        if action == "" and method in ("GET", "HEAD"):
            slot = self._slot(endpoint, version)
            assert slot.model is not None
            await _json(send, 200, v2.model_metadata(slot.model), rid)
            return
        raise _HttpError(405, "BAD_REQUEST", f"{method} is not allowed here")

    def _endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise _HttpError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"no model named {name!r} is served here",
                hint=f"served: {sorted(self.endpoints)}",
            )
        return endpoint

    def _slot(self, endpoint: Endpoint, version: str | None) -> Slot:
        if version is None:
            slot = endpoint.route()
        else:
            found = endpoint.slot_for_version(version)
            if found is None:
                served = [m.version for _, m in endpoint.models()]
                raise _HttpError(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"version {version!r} of {endpoint.name!r} is not served here",
                    hint=f"served versions: {served}",
                )
            slot = found
        if slot.model is None:
            raise _HttpError(503, "TEMPORARILY_UNAVAILABLE", f"{endpoint.name!r} is not loaded yet")
        return slot

    # -- scoring -------------------------------------------------------------------------
    async def _invocations(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        if self.authorize is not None:
            await self.authorize(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        wanted = next(
            (p[6:] for p in query.split("&") if p.startswith("model=")),
            None,
        )
        endpoint = self._endpoint(wanted) if wanted else next(iter(self.endpoints.values()))
        await self._infer(scope, receive, send, rid, endpoint, self._slot(endpoint, None), "mlflow")

    async def _infer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        endpoint: Endpoint,
        slot: Slot,
        protocol: str,
    ) -> None:
        started = time.perf_counter()
        model = slot.model
        assert model is not None
        batcher = slot.batcher
        batcher.arriving += 1
        try:
            body = await self._body(scope, receive)
            try:
                decoded = _decode(scope, body, model, protocol)
            except LooplineError as exc:
                self._count_failure(endpoint, slot, model, exc, started)
                raise
        finally:
            batcher.arriving -= 1
        data, rows, v2_request = decoded
        try:
            done = await batcher.submit(model, data, rows)
        except LooplineError as exc:
            self._count_failure(endpoint, slot, model, exc, started)
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            err = InvalidArgumentError(
                f"the model could not predict on this input: {exc}",
                hint="check the input against the model's signature (GET /v2/models/NAME)",
            )
            self._count_failure(endpoint, slot, model, err, started)
            raise err from exc
        except Exception as exc:
            self._count_failure(endpoint, slot, model, None, started)
            raise _HttpError(500, "INTERNAL_ERROR", f"the model failed: {exc}") from exc
        if v2_request is not None:
            body_out, header_len = v2.encode_response(model, done.prediction, v2_request, rid)
        else:
            body_out, header_len = invocations.encode_response(done.prediction), None
        extra = (
            [(b"inference-header-content-length", str(header_len).encode())] if header_len else []
        )
        content_type = b"application/octet-stream" if header_len else _JSON
        await _raw(send, 200, body_out, content_type, rid, extra)
        seconds = time.perf_counter() - started
        self.metrics.answered(model, slot.variant, 200, seconds)
        slot.stats.add(seconds * 1000.0, False)
        logger = endpoint.logger
        if logger is not None and logger.sampled():
            logger.log([rid], [rows], model, slot.variant, seconds * 1000.0, data, done.prediction)
        shadow = endpoint.shadow
        if shadow is not None and shadow.model is not None and slot.variant != "shadow":
            task = asyncio.ensure_future(self._mirror(endpoint, shadow, scope, body, rid, protocol))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _mirror(
        self, endpoint: Endpoint, shadow: Slot, scope: Scope, body: bytes, rid: str, protocol: str
    ) -> None:
        """The shadow predicts the same request; its answer is logged, never returned."""
        model = shadow.model
        if model is None:
            return
        started = time.perf_counter()
        try:
            data, rows, _ = _decode(scope, body, model, protocol)
            done = await shadow.batcher.submit(model, data, rows)
        except Exception:
            self.metrics.answered(model, "shadow", 500, 0.0)
            shadow.stats.add((time.perf_counter() - started) * 1000.0, True)
            return
        seconds = time.perf_counter() - started
        self.metrics.answered(model, "shadow", 200, seconds)
        shadow.stats.add(seconds * 1000.0, False)
        logger = endpoint.logger
        if logger is not None and logger.sampled():
            logger.log([rid], [rows], model, "shadow", seconds * 1000.0, data, done.prediction)

    def _count_failure(
        self,
        endpoint: Endpoint,
        slot: Slot,
        model: ServedModel,
        exc: LooplineError | None,
        started: float,
    ) -> None:
        status = 500 if exc is None else _STATUS.get(exc.code, 400)
        seconds = time.perf_counter() - started
        self.metrics.answered(model, slot.variant, status, seconds)
        # Bad input says nothing about the model: only its own failures count against it.
        slot.stats.add(seconds * 1000.0, status >= 500)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise _HttpError(400, "BAD_REQUEST", "invalid Content-Length") from None
                if declared > limit:
                    raise _HttpError(
                        413,
                        "REQUEST_LIMIT_EXCEEDED",
                        f"the request body is {declared} bytes; the limit is {limit} bytes",
                        hint="send smaller batches, or start the server with a larger --max-body-mb",
                    )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HttpError(400, "BAD_REQUEST", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _HttpError(
                    413,
                    "REQUEST_LIMIT_EXCEEDED",
                    f"the request body is larger than the limit of {limit} bytes",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- feedback ------------------------------------------------------------------------
    async def _feedback(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        if self.authorize is not None:
            await self.authorize(scope)
        body = await self._body(scope, receive)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"the request body is not valid JSON: {exc}") from exc
        items, target = _feedback_items(doc)
        if target is None and len(self.endpoints) > 1:
            raise InvalidArgumentError(
                "this server serves several models: say which the feedback is for",
                hint='add "model": NAME to the body',
            )
        endpoint = self._endpoint(target) if target else next(iter(self.endpoints.values()))
        if endpoint.logger is None:
            raise InvalidArgumentError(
                "prediction logging is off on this server, so feedback has nowhere to go",
                hint="start the server without --no-log",
            )
        endpoint.logger.feedback(items)
        await _json(send, 200, {"accepted": len(items)}, rid)


# -- helpers --------------------------------------------------------------------------------
def _decode(scope: Scope, body: bytes, model: ServedModel, protocol: str) -> tuple[Any, int, Any]:
    headers = dict(scope["headers"])
    if protocol == "v2":
        raw_len = headers.get(b"inference-header-content-length")
        header_length = None
        if raw_len is not None:
            try:
                header_length = int(raw_len)
            except ValueError:
                raise InvalidArgumentError("invalid Inference-Header-Content-Length") from None
        request = v2.parse(body, model, header_length)
        return request.data, request.rows, request
    content_type = headers.get(b"content-type", b"application/json").decode("latin-1")
    data, rows = invocations.parse(body, content_type, model)
    return data, rows, None


def _feedback_items(doc: Any) -> tuple[list[tuple[str, Any]], str | None]:
    target = None
    if isinstance(doc, dict):
        target = doc.get("model")
        if "feedback" in doc:
            doc = doc["feedback"]
        elif "request_id" in doc:
            doc = [doc]
        elif "request_ids" in doc and "labels" in doc:
            ids, labels = doc["request_ids"], doc["labels"]
            if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
                raise InvalidArgumentError("request_ids and labels must be lists of one length")
            doc = [{"request_id": i, "label": v} for i, v in zip(ids, labels, strict=True)]
    if not isinstance(doc, list) or not doc:
        raise InvalidArgumentError(
            'feedback is {"request_id": ID, "label": VALUE}, a list of those, '
            'or {"request_ids": [...], "labels": [...]}'
        )
    items: list[tuple[str, Any]] = []
    for entry in doc:
        if not isinstance(entry, dict) or not isinstance(entry.get("request_id"), str):
            raise InvalidArgumentError("each feedback entry needs a request_id (text)")
        label = entry.get("label")
        if not isinstance(label, (int, float, str, bool)):
            raise InvalidArgumentError(
                f"the label of {entry['request_id']!r} must be a number, a boolean or text"
            )
        items.append((entry["request_id"], label))
    if target is not None and not isinstance(target, str):
        raise InvalidArgumentError("model must be a name")
    return items, target


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


def _server_metadata() -> dict[str, Any]:
    from loopline import __version__

    return {"name": "loopline", "version": __version__, "extensions": ["binary_tensor_data"]}


async def _raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    rid: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, doc: Any, rid: str) -> None:
    await _raw(send, status, orjson.dumps(doc), _JSON, rid)


async def _error(send: Send, exc: _HttpError, rid: str) -> None:
    doc: dict[str, Any] = {"error_code": exc.code, "message": exc.message, "error": exc.message}
    if exc.hint:
        doc["hint"] = exc.hint
    extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else None
    await _raw(send, exc.status, orjson.dumps(doc), _JSON, rid, extra)

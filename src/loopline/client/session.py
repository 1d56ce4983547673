"""What every HTTP client of a loopline server shares: one keep-alive connection,
identity headers, retries with backoff, and error bodies turned back into the
:class:`~loopline.errors.LooplineError` the server raised.

Domain clients (tracking's :class:`~loopline.client.http.HttpTransport`, the
registry's, the data service's) inherit it and only describe their endpoints.

Retries: a read (GET, HEAD) is retried on network errors, timeouts and 5xx
answers; a write only when the connection could not be made (the request never
left), unless the caller declares it idempotent (tracking's batch writes carry an
id the server deduplicates on).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from loopline._version import __version__
from loopline.errors import LimitExceededError, LooplineError, TransportError, error_from_code

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ApiSession"]

T = TypeVar("T")
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_NO_RETRY_CODES = frozenset({"DATA_LOSS"})  # a retry would only repeat these
_READ_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})


class _Retryable(Exception):
    """A 5xx answer worth retrying; carries the error to raise if retries run out."""

    def __init__(self, error: LooplineError) -> None:
        super().__init__(str(error))
        self.error = error


class ApiSession:
    """An HTTP session with a loopline server's API under ``prefix``."""

    #: Said when the server cannot be reached or does not look like loopline.
    server_hint = "is `loopline server` running? check the tracking URI and the network"
    #: The API's path under the server's base URL; each domain client sets its own.
    prefix = "/api/v1"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        user: str = "unknown",
        project: str = "default",
        timeout: float = 120.0,
        retries: int = 8,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.project = project
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.headers: dict[str, str] = {
            "user-agent": f"loopline/{__version__}",
            "x-loopline-user": user,
            "x-loopline-project": project,
        }
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url + self.prefix,
            headers=self.headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    def close(self) -> None:
        self._http.close()

    def _retrying(self, attempt: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``attempt`` until it succeeds or retrying stops making sense."""
        retry_on: tuple[type[BaseException], ...] = (
            (*_READ_ERRORS, _Retryable) if idempotent else _CONNECT_ERRORS
        )
        delay = self.backoff
        failure: Exception | None = None
        for tries in range(1, self.retries + 1):
            try:
                return attempt()
            except retry_on as exc:
                failure = exc  # type: ignore[assignment]
            except _Retryable as exc:  # a write answered 5xx: it may have happened
                raise exc.error from None
            if tries < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        if isinstance(failure, _Retryable):
            raise failure.error
        raise TransportError(
            f"could not reach the loopline server at {self.base_url} after {self.retries} "
            f"tries: {type(failure).__name__}: {failure}",
            hint=self.server_hint,
        ) from failure

    def _check(self, response: httpx.Response) -> httpx.Response:
        """The response when it succeeded; else raise its error (or ``_Retryable``)."""
        if response.status_code < 400:
            return response
        error = self._error(response)
        if response.status_code in _RETRY_STATUS and error.code not in _NO_RETRY_CODES:
            raise _Retryable(error)
        raise error

    def _error(self, response: httpx.Response) -> LooplineError:
        response.read()
        try:
            body = orjson.loads(response.content)
            code, message = str(body["error_code"]), str(body["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            text = response.text.strip()[:300] or response.reason_phrase
            return LooplineError(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}: {text}",
                hint=self.server_hint,
                code="TEMPORARILY_UNAVAILABLE" if response.status_code >= 500 else "BAD_REQUEST",
            )
        hint = body.get("hint")
        if code == "REQUEST_LIMIT_EXCEEDED":
            return LimitExceededError(message, hint=hint, code=code)
        return self._decode_error(code, message, hint, body)

    def _decode_error(
        self, code: str, message: str, hint: str | None, body: dict[str, Any]
    ) -> LooplineError:
        """Rebuild the server's error; domains override this for richer errors."""
        return error_from_code(code, message, hint)

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One JSON call, retried as its method allows; returns the decoded answer."""
        if json is not None:
            content = orjson.dumps(json)
            headers = {"content-type": "application/json"}
        clean = None if params is None else {k: v for k, v in params.items() if v is not None}

        def attempt() -> Any:
            response = self._http.request(
                method, url, params=clean, content=content, headers=headers
            )
            return _json(self._check(response))

        safe = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        return self._retrying(attempt, idempotent=safe)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise LooplineError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} with something that is not JSON: {response.text[:100]!r}",
            hint="is this URL a loopline server? the tracking URI is its base URL",
            code="BAD_REQUEST",
        ) from None

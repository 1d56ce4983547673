"""The one permission check every request passes, as a pure ASGI middleware.

Order of work for a request when enforcement is on:

1. authenticate: ``Authorization: Bearer <token>`` (loopline's SDK and CLI,
   ``MLFLOW_TRACKING_TOKEN``), ``Authorization: Basic`` (``MLFLOW_TRACKING_USERNAME``
   and ``..._PASSWORD``; the password may also be a token), or the web UI's session
   cookie — whose state-changing requests must echo the CSRF token in ``X-CSRF-Token``;
2. authorise: :func:`~loopline.auth.rules.required_role` says what the route needs;
   the caller needs it in every project the request touches (:mod:`loopline.auth.scope`);
   approving a model version in a four-eyes project needs a maintainer other
   than its author;
3. hand the route a :class:`~loopline.server.deps.Caller` (``request.state.caller``);
4. record every state-changing request in the audit log (who, what, status, when,
   from which address).

With enforcement off (a laptop's server on loopback), only the security headers
are added and the routes see the declared ``X-Loopline-User`` as before.
Failed authentications are rate-limited per client address, logins per address
and user name, and every authenticated request per user (``LOOPLINE_AUTH_RATE_LIMIT``
requests a minute, counted in the metadata store across worker processes; 0 turns it
off); credentials never reach a log line.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool

from loopline.auth.credentials import TOKEN_PREFIX, constant_time_equal, digest
from loopline.auth.principal import ANONYMOUS, Principal
from loopline.auth.ratelimit import RateLimiter, SharedRateLimiter
from loopline.auth.roles import Role
from loopline.auth.rules import required_role
from loopline.auth.scope import Ids, ids_in_body, ids_in_path, ids_in_query, projects_of
from loopline.server.errors import error_response

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from loopline.auth.collab import CollabStore
    from loopline.auth.oidc import OidcClient
    from loopline.auth.store import AuthStore
    from loopline.auth.webhooks import Dispatcher
    from loopline.store.metadata import Database

__all__ = ["SESSION_COOKIE", "AuthConfig", "AuthMiddleware", "install_auth"]

SESSION_COOKIE = "loopline_session"
CSRF_HEADER = b"x-csrf-token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_SCANNED_BODY = 64 * 1024 * 1024
_BASIC_CACHE_SECONDS = 30.0
DEFAULT_RATE_LIMIT = 6000
"""Requests a minute per user when ``LOOPLINE_AUTH_RATE_LIMIT`` is unset."""
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The UI's pages: scripts and styles from the server itself only.
_UI_CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
_NO_CSP_PREFIXES = ("/api/", "/ajax-api/", "/docs", "/redoc")


@dataclass
class AuthConfig:
    """The server's enforcement switch and what the check needs (``app.state.auth``)."""

    enabled: bool
    db: Database
    store: AuthStore
    collab: CollabStore
    failed: RateLimiter = field(default_factory=lambda: RateLimiter(30, 60.0))
    """Failed authentications per client address."""
    logins: RateLimiter = field(default_factory=lambda: RateLimiter(10, 300.0))
    """Login attempts per client address and user name."""
    usage: SharedRateLimiter | None = None
    """Requests per user and minute, shared by the server's processes (None: no cap)."""
    webhooks: Dispatcher | None = None
    """Delivers notifications to webhooks while the app runs."""
    oidc: OidcClient | None = None
    """Single sign-on through an OpenID Connect issuer (None: not configured)."""
    audit: bool = True
    _basic_cache: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    """A password check's digest -> (when, user id, the user's change stamp then)."""

    def basic_cached(self, key: str) -> tuple[int, int] | None:
        hit = self._basic_cache.get(key)
        if hit is None or time.monotonic() - hit[0] > _BASIC_CACHE_SECONDS:
            return None
        return hit[1], hit[2]

    def remember_basic(self, key: str, user_id: int, stamp: int) -> None:
        if len(self._basic_cache) > 10_000:
            self._basic_cache.clear()
        self._basic_cache[key] = (time.monotonic(), user_id, stamp)

    def forget_basic(self) -> None:
        """Drop cached password checks (a password changed or a user was disabled)."""
        self._basic_cache.clear()


def install_auth(app: FastAPI, *, enabled: bool | None = None) -> None:
    """Put the permission check in front of ``app`` (enforcing when ``enabled``).

    ``enabled=None`` reads ``Settings.auth`` (``LOOPLINE_AUTH``, set by ``loopline server
    --auth``); :func:`loopline.server.run.serve` also turns it on for non-loopback binds.
    """
    from loopline.auth.collab import CollabStore
    from loopline.auth.oidc import OidcClient, OidcConfig
    from loopline.auth.store import AuthStore
    from loopline.auth.webhooks import Dispatcher
    from loopline.config import Settings

    settings = Settings.from_env()
    if enabled is None:
        enabled = bool(settings.auth)
    db = app.state.service.db
    limit = settings.auth_rate_limit or DEFAULT_RATE_LIMIT
    app.state.auth = AuthConfig(
        enabled=enabled,
        db=db,
        store=AuthStore(db),
        collab=CollabStore(db),
        usage=SharedRateLimiter(db, limit) if limit else None,
        webhooks=Dispatcher(db),
    )
    sso = OidcConfig.from_settings(settings)
    if sso is not None:
        app.state.auth.oidc = OidcClient(sso)
    # Started and stopped with the app (uvicorn's lifespan), in every worker process:
    # the dispatcher's claims keep each event to one delivery.
    app.router.add_event_handler("startup", app.state.auth.webhooks.start)
    app.router.add_event_handler("shutdown", app.state.auth.webhooks.stop)
    app.add_middleware(AuthMiddleware)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class _Denied(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.hint = code, message, status, hint
        self.retry_after = retry_after


class AuthMiddleware:
    """Authenticate, authorise, audit; add security headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config: AuthConfig | None = getattr(scope["app"].state, "auth", None)
        send = _with_security_headers(send, scope["path"])
        if config is None or not config.enabled:
            await self.app(scope, receive, send)
            return
        method = scope["method"].upper()
        status = {"code": 0}
        caller_name = {"name": "anonymous", "project": "", "auth": False}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            receive = await self._check(config, scope, receive, method, caller_name)
        except _Denied as denied:
            response = error_response(denied.code, denied.message, denied.status, denied.hint)
            if denied.status == 401:
                response.headers["www-authenticate"] = 'Bearer realm="loopline"'
            if denied.retry_after is not None:
                response.headers["retry-after"] = str(int(denied.retry_after) + 1)
            await response(scope, receive, recording_send)
        else:
            await self.app(scope, receive, recording_send)
        finally:
            if method in _UNSAFE and config.audit:
                entry = {
                    "actor": caller_name["name"],
                    "authenticated": caller_name["auth"],
                    "method": method,
                    "path": scope["path"],
                    "status": status["code"] or 500,
                    "project": caller_name["project"],
                    "origin": client_address(scope),
                    "user_agent": _header(scope, b"user-agent") or "",
                }
                await run_in_threadpool(config.collab.record, entry)

    async def _check(
        self,
        config: AuthConfig,
        scope: Scope,
        receive: Receive,
        method: str,
        who: dict[str, Any],
    ) -> Receive:
        """Raise :class:`_Denied` or return the (possibly replaying) receive."""
        from loopline.server.deps import Caller

        path: str = scope["path"]
        needed = required_role(method, path)
        principal = await self._authenticate(config, scope, method)
        who["name"], who["auth"] = principal.name, principal.authenticated
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["audit"] = who  # routes may name the actor better (the login's user name)
        self._check_csrf(scope, method, principal)
        header_project = (_header(scope, b"x-loopline-project") or "default")[:256]
        if needed == Role.OPEN:
            who["project"] = header_project
            state["caller"] = Caller(principal.name, header_project, principal.authenticated)
            return receive
        if not principal.authenticated:
            raise _Denied(
                "UNAUTHENTICATED",
                "this server requires authentication",
                401,
                "send a token (LOOPLINE_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN; create one "
                "with `loopline tokens create`) or sign in",
            )
        if config.usage is not None:
            await self._check_usage(config.usage, principal)
        ids = ids_in_path(path)
        ids.update(ids_in_query(scope.get("query_string", b"")))
        body: Any = None
        if method in _UNSAFE and _is_json(scope, path):
            raw, receive = await _buffer(scope, receive)
            body = _parse(raw)
            ids.update(ids_in_body(path, body))
        touched = await run_in_threadpool(projects_of, config.db, ids) if ids else set()
        if not touched:
            touched = {header_project}
        project = header_project if header_project in touched else sorted(touched)[0]
        who["project"] = project
        if needed == Role.SERVER_ADMIN and not principal.is_admin:
            raise _Denied(
                "PERMISSION_DENIED",
                f"{principal.name!r} is not a server administrator",
                403,
                "ask an administrator",
            )
        if needed > Role.AUTHENTICATED:  # else being signed in is enough, whatever the project
            for name in sorted(touched):
                _require(principal, name, needed)
        if path == "/api/v1/registry/reviews" and method == "POST":
            await self._check_review(config, scope, principal, header_project, body)
        state["caller"] = Caller(principal.name, project, True)
        return receive

    async def _authenticate(self, config: AuthConfig, scope: Scope, method: str) -> Principal:
        address = client_address(scope)
        authorization = _header(scope, b"authorization")
        principal: Principal | None
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer":
                principal = await run_in_threadpool(
                    config.store.authenticate_token, credentials.strip()
                )
            elif scheme == "basic":
                principal = await self._basic(config, credentials.strip())
            else:
                principal = None
            if principal is None:
                self._failed(config, address)
                raise _Denied(
                    "UNAUTHENTICATED",
                    "the credentials are not valid (unknown, revoked or expired token, or a "
                    "wrong user name or password)",
                    401,
                    "create a new token with `loopline tokens create`",
                )
            return principal
        session = _cookie(scope, SESSION_COOKIE)
        if session:
            principal = await run_in_threadpool(config.store.authenticate_session, session)
            return ANONYMOUS if principal is None else principal
        return ANONYMOUS

    @staticmethod
    def _check_csrf(scope: Scope, method: str, principal: Principal) -> None:
        """Cookie-authenticated state changes must echo the session's CSRF token."""
        if principal.via != "session" or method not in _UNSAFE:
            return
        if scope["path"] == "/api/v1/auth/login":
            return
        sent = _header(scope, CSRF_HEADER) or ""
        if not principal.csrf_token or not constant_time_equal(sent, principal.csrf_token):
            raise _Denied(
                "PERMISSION_DENIED",
                "missing or wrong CSRF token",
                403,
                "send the csrf_token from the login answer in the X-CSRF-Token header",
            )

    async def _basic(self, config: AuthConfig, credentials: str) -> Principal | None:
        try:
            user, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if secret.startswith(TOKEN_PREFIX):
            found = await run_in_threadpool(config.store.authenticate_token, secret)
            return found if found is not None and found.name == user else None
        # argon2 is slow on purpose: a client sending the same password on every
        # request is checked once, then remembered briefly under a digest. Only the
        # check is remembered: the user is read again on every request, and any
        # change to them (password, disabled) since the check voids it, in every worker.
        key = digest(f"{user}\x00{secret}")
        cached = config.basic_cached(key)
        if cached is not None:
            found = await run_in_threadpool(config.store.principal_if_unchanged, *cached, "basic")
            if found is not None:
                return found
        stamp = await run_in_threadpool(config.store.user_stamp, user)
        found = await run_in_threadpool(config.store.authenticate_password, user, secret)
        if found is None or stamp is None:
            return None
        config.remember_basic(key, found.user_id, stamp)
        return Principal(found.name, found.user_id, found.is_admin, found.roles, via="basic")

    @staticmethod
    async def _check_usage(usage: SharedRateLimiter, principal: Principal) -> None:
        allowed, due = usage.count(f"user:{principal.user_id}")
        if due is not None:  # a store write now and then; the event loop must not wait on it
            allowed = await run_in_threadpool(usage.sync, *due)
        if not allowed:
            wait = usage.retry_after()
            raise _Denied(
                "REQUEST_LIMIT_EXCEEDED",
                f"{principal.name!r} sent more than {usage.limit} requests this minute",
                429,
                f"wait {int(wait) + 1} s, or send fewer, larger requests (batches)",
                retry_after=wait,
            )

    @staticmethod
    def _failed(config: AuthConfig, address: str) -> None:
        if not config.failed.hit(address):
            wait = config.failed.retry_after(address)
            raise _Denied(
                "REQUEST_LIMIT_EXCEEDED",
                "too many failed authentications from this address",
                429,
                f"wait {int(wait) + 1} s before trying again",
                retry_after=wait,
            )

    async def _check_review(
        self,
        config: AuthConfig,
        scope: Scope,
        principal: Principal,
        project: str,
        body: Any,
    ) -> None:
        decision = body.get("decision") if isinstance(body, dict) else None
        if decision not in ("approved", "rejected"):
            return
        _require(principal, project, Role.MAINTAINER)
        from urllib.parse import parse_qs

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        name = (query.get("name") or [""])[0]
        version = (query.get("version") or [""])[0]
        author = await run_in_threadpool(_version_author, config, project, name, version)
        if author is None or author != principal.name:
            return
        if await run_in_threadpool(config.store.four_eyes, project):
            raise _Denied(
                "PERMISSION_DENIED",
                f"project {project!r} requires four-eyes review: {principal.name!r} wrote "
                f"{name} version {version} and cannot {decision[:-1]} it",
                403,
                "ask another maintainer of the project to review it",
            )


def _require(principal: Principal, project: str, needed: Role) -> None:
    has = principal.role_in(project)
    if has < needed:
        what = has.label if has >= Role.VIEWER else "no role"
        raise _Denied(
            "PERMISSION_DENIED",
            f"{principal.name!r} needs the {needed.label} role in project {project!r} (has {what})",
            403,
            "ask a project admin: `loopline projects members add PROJECT USER --role ROLE`",
        )


def _version_author(config: AuthConfig, project: str, name: str, version: str) -> str | None:
    import sqlalchemy as sa

    from loopline.store.metadata.schema import model_versions, projects, registered_models

    if not version.isdigit():
        return None
    with config.db.read() as conn:
        author = conn.execute(
            sa.select(model_versions.c.created_by)
            .join(registered_models, registered_models.c.id == model_versions.c.model_id)
            .join(projects, projects.c.id == registered_models.c.project_id)
            .where(
                projects.c.name == project,
                registered_models.c.name == name,
                model_versions.c.version == int(version),
            )
        ).scalar()
    return None if author is None else str(author)


def _is_json(scope: Scope, path: str) -> bool:
    kind = (_header(scope, b"content-type") or "").lower()
    return "json" in kind or path.endswith("/writes")


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None  # the route answers the syntax error


async def _buffer(scope: Scope, receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (to find the ids in it) and a receive that replays it."""
    limit = getattr(scope["app"].state, "max_body_bytes", None) or _MAX_SCANNED_BODY
    declared = _header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        # The body-limit middleware behind us answers 413 without reading it.
        return b"", receive
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            from loopline.server.api.limits import limit_message

            raise _Denied("REQUEST_LIMIT_EXCEEDED", limit_message(limit), 413)
        chunks.append(chunk)
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return raw, replay


def _with_security_headers(send: Send, path: str) -> Send:
    csp = not path.startswith(_NO_CSP_PREFIXES)
    no_store = path.startswith("/api/v1/auth/")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
            if csp and b"content-security-policy" not in present:
                headers.append((b"content-security-policy", _UI_CSP))
            if no_store:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


# Referenced for type checkers of callers that build Ids themselves.
_ = Ids

"""Collaboration and access: sign-in, users, tokens, projects and members, comments,
notifications, the audit log (REST, under /api/v1).

==========  ==========================================  ======================  ==============
Method      Path                                        What                    Needs
==========  ==========================================  ======================  ==============
POST        /auth/login                                 session cookie + CSRF   nothing
POST        /auth/logout                                end the session         nothing
GET         /auth/oidc/login, /auth/oidc/callback       single sign-on          nothing
GET         /auth/me                                    who am I, my roles      a sign-in (401)
GET, POST   /users                                      list, create            server admin
POST        /users/{name}/disable, /enable              (dis)allow sign-in      server admin
PUT         /users/{name}/password                      set a password          server admin
GET, POST   /tokens                                     my tokens; a new one    a sign-in
DELETE      /tokens/{id}                                revoke                  a sign-in
GET, POST   /projects                                   mine; create            -, server admin
GET         /projects/{name}/members                    members and roles       viewer
PUT/DELETE  /projects/{name}/members/{user}             set or remove a role    admin
GET, PUT    /projects/{name}/policy                     four-eyes review        viewer, admin
GET, POST   /comments?entity_type=&entity_id=           comments (Markdown)     viewer, editor
DELETE      /comments/{id}                              the author, or admin    editor
GET         /notifications                              my feed                 a sign-in
POST        /notifications/read                         mark read up to an id   a sign-in
GET, POST   /webhooks[?project=]                        mine or a project's     a sign-in, admin
DELETE      /webhooks/{id}                              remove                  its owner, admin
GET         /audit, /audit/export                       entries; JSON lines     server admin
==========  ==========================================  ======================  ==============

The roles are enforced by the permission check in front of every route
(:mod:`loopline.auth.middleware`); these routes only add what depends on the
object (a comment's run, a token's owner).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.auth.roles import Role
from loopline.errors import (
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from loopline.server.deps import Caller, auth_config, auth_enabled, caller, principal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.auth.collab import CollabStore
    from loopline.auth.middleware import AuthConfig
    from loopline.auth.oidc import OidcClient
    from loopline.auth.principal import Principal
    from loopline.auth.store import AuthStore
    from loopline.auth.webhooks import WebhookStore

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["collaboration"], dependencies=[Depends(caller)])

CallerDep = Annotated[Caller, Depends(caller)]
_SECURE_SCHEMES = ("https", "wss")


def _config(request: Request) -> AuthConfig:
    config = auth_config(request)
    if config is None:  # pragma: no cover - create_app always installs it
        raise NotFoundError("this server has no user management")
    return config


def _store(request: Request) -> AuthStore:
    return _config(request).store


def _collab(request: Request) -> CollabStore:
    return _config(request).collab


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _me(request: Request, who: Caller) -> tuple[str, Principal | None]:
    """The acting user's name; their principal when the server enforces auth."""
    found = principal(request)
    if auth_enabled(request) and found is None:
        raise UnauthenticatedError("nobody is signed in", hint="sign in first")
    return (found.name if found else who.name), found


def _require(request: Request, project: str, needed: Role) -> None:
    """Object-level check for routes whose project is not in their path or query."""
    if not auth_enabled(request):
        return
    found = principal(request)
    if found is None:
        raise UnauthenticatedError("this server requires authentication")
    if found.role_in(project) < needed:
        raise PermissionDeniedError(
            f"{found.name!r} needs the {needed.label} role in project {project!r}"
        )


# -- sign-in ------------------------------------------------------------------------------


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/auth/login", summary="Sign in: sets the session cookie, returns the CSRF token")
async def login(body: Login, request: Request) -> Response:
    config = _config(request)
    from loopline.auth.middleware import client_address

    address = client_address(request.scope)
    audit = getattr(request.state, "audit", None)
    if isinstance(audit, dict):
        audit["name"] = body.username[:256]
    if not config.logins.hit(f"{address}\x00{body.username}"):
        raise LimitExceededError(
            "too many sign-in attempts", hint="wait a few minutes before trying again"
        )
    found = await run_in_threadpool(
        config.store.authenticate_password, body.username, body.password
    )
    if found is None:
        raise UnauthenticatedError(
            "wrong user name or password, or the user is disabled",
            hint="ask an administrator to check your account",
        )
    session_id, csrf = await run_in_threadpool(config.store.create_session, found)
    response = _json({"user": _user_view(found), "csrf_token": csrf})
    _set_session_cookie(response, request, session_id)
    return response


def _set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    from loopline.auth.middleware import SESSION_COOKIE
    from loopline.auth.store import SESSION_SECONDS

    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme in _SECURE_SCHEMES,
        path="/",
    )


@router.post("/auth/logout", summary="Sign out: ends the session and clears its cookie")
async def logout(request: Request) -> Response:
    from loopline.auth.middleware import SESSION_COOKIE

    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await run_in_threadpool(_store(request).end_session, session_id)
    response = _json({})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


_OIDC_COOKIE = "loopline_oidc"
_OIDC_PATH = "/api/v1/auth/oidc"


def _sso(request: Request) -> OidcClient:
    found = _config(request).oidc
    if found is None:
        raise NotFoundError(
            "single sign-on is not configured on this server",
            hint="set LOOPLINE_OIDC_ISSUER, LOOPLINE_OIDC_CLIENT_ID and LOOPLINE_OIDC_CLIENT_SECRET",
        )
    return found


def _redirect_uri(request: Request, sso: OidcClient) -> str:
    return sso.config.redirect_uri or str(request.url_for("oidc_callback"))


@router.get(
    "/auth/oidc/login", summary="Single sign-on: go to the identity provider", status_code=302
)
def oidc_login(request: Request) -> Response:
    import secrets

    sso = _sso(request)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    target = sso.authorize_url(_redirect_uri(request, sso), state, nonce)
    response = Response(status_code=302, headers={"location": target})
    response.set_cookie(
        _OIDC_COOKIE,
        f"{state}.{nonce}",
        max_age=600,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back
        secure=request.url.scheme in _SECURE_SCHEMES,
        path=_OIDC_PATH,
    )
    return response


@router.get(
    "/auth/oidc/callback",
    name="oidc_callback",
    summary="Single sign-on: the provider's answer; sets the session cookie",
    status_code=302,
)
def oidc_callback(
    request: Request,
    code: Annotated[str, Query(min_length=1, max_length=4096)],
    state: Annotated[str, Query(min_length=1, max_length=256)],
) -> Response:
    from loopline.auth.credentials import constant_time_equal

    sso = _sso(request)
    expected, _, nonce = (request.cookies.get(_OIDC_COOKIE) or "").partition(".")
    if not expected or not nonce or not constant_time_equal(expected, state):
        raise InvalidArgumentError(
            "the sign-in state does not match this browser's",
            hint="start again at /auth/oidc/login",
        )
    claims = sso.exchange(code, _redirect_uri(request, sso), nonce)
    name = str(claims.get(sso.config.username_claim) or "")
    store = _store(request)
    found = store.principal_by_name(name, "session") if name else None
    audit = getattr(request.state, "audit", None)
    if isinstance(audit, dict):
        audit["name"] = name[:256] or "unknown"
    if found is None:
        raise PermissionDeniedError(
            f"{name or 'this identity'!r} is not an enabled loopline user",
            hint="ask an administrator to create the user (`loopline users create NAME`)",
        )
    session_id, _csrf = store.create_session(found)
    response = Response(status_code=302, headers={"location": "/"})
    response.delete_cookie(_OIDC_COOKIE, path=_OIDC_PATH)
    _set_session_cookie(response, request, session_id)
    return response


def _user_view(found: Principal) -> dict[str, Any]:
    return {"name": found.name, "is_admin": found.is_admin}


@router.get("/auth/me", summary="The signed-in user and their roles (401 when nobody is)")
def me(request: Request, who: CallerDep) -> Response:
    if not auth_enabled(request):
        return _json({"auth": False, "user": {"name": who.name, "is_admin": False}, "roles": {}})
    found = principal(request)
    if found is None:
        raise UnauthenticatedError("nobody is signed in", hint="POST /api/v1/auth/login")
    body: dict[str, Any] = {
        "auth": True,
        "user": _user_view(found),
        "roles": {project: role.label for project, role in sorted(found.roles.items())},
        "via": found.via,
    }
    if found.csrf_token:
        body["csrf_token"] = found.csrf_token
    return _json(body)


# -- users ----------------------------------------------------------------------------------


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str | None = Field(None, min_length=1, max_length=1024)
    email: str = Field("", max_length=320)
    admin: bool = False


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


@router.get("/users", summary="List users")
def list_users(request: Request) -> Response:
    return _json({"users": _store(request).list_users()})


@router.post("/users", summary="Create a user", status_code=201)
def create_user(body: NewUser, request: Request, who: CallerDep) -> Response:
    created = _store(request).create_user(
        body.name, body.password, email=body.email, is_admin=body.admin, actor=who.name
    )
    return _json({"user": created}, 201)


@router.post("/users/{name}/disable", summary="Disable a user (their tokens and sessions stop)")
def disable_user(name: str, request: Request, who: CallerDep) -> Response:
    store = _store(request)
    store.get_user(name)
    store.ensure_not_last_admin(name)
    user = store.set_disabled(name, True, actor=who.name)
    _config(request).forget_basic()
    return _json({"user": user})


@router.post("/users/{name}/enable", summary="Enable a disabled user")
def enable_user(name: str, request: Request, who: CallerDep) -> Response:
    return _json({"user": _store(request).set_disabled(name, False, actor=who.name)})


@router.put("/users/{name}/password", summary="Set a user's password (ends their sessions)")
def set_password(name: str, body: PasswordIn, request: Request, who: CallerDep) -> Response:
    _store(request).set_password(name, body.password, actor=who.name)
    _config(request).forget_basic()
    return _json({})


# -- tokens ---------------------------------------------------------------------------------


class NewToken(BaseModel):
    name: str = Field("", max_length=256)
    expires_in_days: float | None = Field(None, gt=0, le=3650)


def _token_owner(request: Request, who: Caller, user: str | None) -> str:
    name, found = _me(request, who)
    if user and user != name:
        if found is not None and not found.is_admin:
            raise PermissionDeniedError("only a server administrator manages others' tokens")
        return user
    return name


@router.get("/tokens", summary="List my tokens (never their secrets)")
def list_tokens(request: Request, who: CallerDep, user: str | None = None) -> Response:
    owner = _token_owner(request, who, user)
    return _json({"tokens": _store(request).list_tokens(owner)})


@router.post(
    "/tokens", summary="Create a token: its secret is in this answer only", status_code=201
)
def create_token(
    body: NewToken, request: Request, who: CallerDep, user: str | None = None
) -> Response:
    owner = _token_owner(request, who, user)
    secret, info = _store(request).create_token(
        owner, name=body.name, expires_in_days=body.expires_in_days
    )
    return _json({"token": secret, **info}, 201)


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke_token(
    token_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    request: Request,
    who: CallerDep,
    user: str | None = None,
) -> Response:
    owner = _token_owner(request, who, user)
    _store(request).revoke_token(owner, token_id, actor=who.name)
    return _json({})


# -- projects -------------------------------------------------------------------------------


class NewProject(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field("", max_length=10_000)


class MemberIn(BaseModel):
    role: Literal["viewer", "editor", "maintainer", "admin"]


class PolicyIn(BaseModel):
    four_eyes: bool


@router.get("/projects", summary="Projects I belong to (all of them for administrators)")
def list_projects(request: Request) -> Response:
    return _json({"projects": _store(request).list_projects(principal(request))})


@router.post(
    "/projects", summary="Create a project (its creator becomes its admin)", status_code=201
)
def create_project(body: NewProject, request: Request, who: CallerDep) -> Response:
    store = _store(request)
    created = store.create_project(body.name, description=body.description, actor=who.name)
    found = principal(request)
    if found is not None:
        store.set_member(body.name, found.name, Role.ADMIN, actor=who.name)
    return _json({"project": created}, 201)


@router.get("/projects/{name}/members", summary="Members of a project and their roles")
def list_members(name: str, request: Request) -> Response:
    return _json({"members": _store(request).members(name)})


@router.put("/projects/{name}/members/{user}", summary="Give a user a role in a project")
def set_member(name: str, user: str, body: MemberIn, request: Request, who: CallerDep) -> Response:
    _store(request).set_member(name, user, Role.parse(body.role), actor=who.name)
    return _json({"project": name, "user": user, "role": body.role})


@router.delete("/projects/{name}/members/{user}", summary="Remove a user from a project")
def remove_member(name: str, user: str, request: Request, who: CallerDep) -> Response:
    _store(request).remove_member(name, user, actor=who.name)
    return _json({})


@router.get("/projects/{name}/policy", summary="A project's review policy")
def get_policy(name: str, request: Request) -> Response:
    store = _store(request)
    store.members(name)  # 404 for an unknown project
    return _json({"project": name, "four_eyes": store.four_eyes(name)})


@router.put("/projects/{name}/policy", summary="Require four-eyes review of model approvals")
def set_policy(name: str, body: PolicyIn, request: Request, who: CallerDep) -> Response:
    _store(request).set_four_eyes(name, body.four_eyes, actor=who.name)
    return _json({"project": name, "four_eyes": body.four_eyes})


# -- comments -------------------------------------------------------------------------------

Target = Literal["run", "model_version", "dataset_version"]


class NewComment(BaseModel):
    entity_type: Target
    entity_id: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)


def _comment_project(request: Request, who: Caller, entity_type: str, entity_id: str) -> str:
    if entity_type == "run":
        base = request.app.state.service
        return str(base.store.run_project(entity_id))
    return who.project


@router.get("/comments", summary="Comments on a run, model version or dataset version")
def list_comments(
    request: Request,
    who: CallerDep,
    entity_type: Target,
    entity_id: Annotated[str, Query(min_length=1, max_length=300)],
) -> Response:
    project = _comment_project(request, who, entity_type, entity_id)
    _require(request, project, Role.VIEWER)
    return _json({"comments": _collab(request).comments(entity_type, entity_id)})


@router.post(
    "/comments", summary="Comment (Markdown; @name mentions notify that user)", status_code=201
)
def add_comment(body: NewComment, request: Request, who: CallerDep) -> Response:
    project = _comment_project(request, who, body.entity_type, body.entity_id)
    _require(request, project, Role.EDITOR)
    created = _collab(request).add_comment(
        body.entity_type, body.entity_id, body.body, author=who.name, project=project
    )
    return _json({"comment": created}, 201)


@router.delete("/comments/{comment_id}", summary="Delete a comment (its author or a project admin)")
def delete_comment(
    comment_id: Annotated[int, PathParam(ge=1, le=2**62)], request: Request, who: CallerDep
) -> Response:
    collab = _collab(request)
    project = collab.comment_project(comment_id)
    _require(request, project, Role.EDITOR)
    found = principal(request)
    moderator = found is None or found.role_in(project) >= Role.ADMIN
    collab.delete_comment(comment_id, actor=who.name, moderator=moderator)
    return _json({})


# -- notifications --------------------------------------------------------------------------


class ReadUpTo(BaseModel):
    up_to_id: int = Field(ge=0, le=2**62)


@router.get("/notifications", summary="My notifications: mentions, approvals requested, alerts")
def notifications(
    request: Request,
    who: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    unread: bool = False,
) -> Response:
    name, found = _me(request, who)
    items = _collab(request).notifications(
        name,
        roles=found.roles if found else {},
        is_admin=found.is_admin if found else False,
        limit=limit,
    )
    if unread:
        items = [n for n in items if not n["read"]]
    return _json({"notifications": items})


@router.post("/notifications/read", summary="Mark my notifications read up to an id")
def mark_read(body: ReadUpTo, request: Request, who: CallerDep) -> Response:
    name, _ = _me(request, who)
    _collab(request).mark_read(name, body.up_to_id)
    return _json({})


# -- webhooks -------------------------------------------------------------------------------


class NewWebhook(BaseModel):
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL receiving JSON POSTs")
    project: str | None = Field(
        None, max_length=64, description="a project's webhook (its admins); else the caller's"
    )


def _hooks(request: Request) -> WebhookStore:
    from loopline.auth.webhooks import WebhookStore

    return WebhookStore(_config(request).db)


@router.get("/webhooks", summary="My webhooks, or a project's (its admins)")
def list_webhooks(
    request: Request,
    who: CallerDep,
    project: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if project is not None:
        _require(request, project, Role.ADMIN)
        return _json({"webhooks": _hooks(request).list(project=project)})
    name, _ = _me(request, who)
    return _json({"webhooks": _hooks(request).list(user=name)})


@router.post(
    "/webhooks", summary="Send my notifications (or a project's) to a URL", status_code=201
)
def add_webhook(body: NewWebhook, request: Request, who: CallerDep) -> Response:
    name, _ = _me(request, who)
    if body.project is not None:
        _require(request, body.project, Role.ADMIN)
        hook = _hooks(request).add(body.url, project=body.project, actor=name)
    else:
        hook = _hooks(request).add(body.url, user=name, actor=name)
    return _json({"webhook": hook}, 201)


@router.delete("/webhooks/{hook_id}", summary="Remove a webhook")
def remove_webhook(
    hook_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], request: Request, who: CallerDep
) -> Response:
    name, found = _me(request, who)
    hooks = _hooks(request)
    hook = hooks.get(hook_id)
    if hook["project"] is not None:
        _require(request, hook["project"], Role.ADMIN)
    elif hook["user"] != name and not (found is not None and found.is_admin):
        raise NotFoundError(f"webhook {hook_id} does not exist")  # others' are not shown
    hooks.remove(hook_id)
    return _json({})


# -- audit ----------------------------------------------------------------------------------

Millis = Annotated[int | None, Query(ge=0, le=2**62, description="milliseconds since the epoch")]


@router.get("/audit", summary="Audit entries (oldest first), filtered")
def audit(
    request: Request,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    project: Annotated[str | None, Query(max_length=256)] = None,
    since: Millis = None,
    until: Millis = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    entries = _collab(request).audit(
        actor=actor, project=project, since=since, until=until, after_id=after_id, limit=limit
    )
    return _json({"entries": entries})


@router.get(
    "/audit/export",
    summary="Every matching audit entry as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def audit_export(
    request: Request,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    project: Annotated[str | None, Query(max_length=256)] = None,
    since: Millis = None,
    until: Millis = None,
) -> StreamingResponse:
    collab = _collab(request)

    def lines() -> Iterator[bytes]:
        for entry in collab.iter_audit(actor=actor, project=project, since=since, until=until):
            yield orjson.dumps(entry) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")

"""The permission check on a real server (uvicorn on 127.0.0.1) with enforcement on.

Every route of the app is enumerated: each refuses a caller without credentials
(401) and a caller one role short of what the route needs (403).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from loopline.auth.roles import Role
from loopline.auth.rules import is_api_path, required_role
from loopline.registry.service import RegistryService
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import ThreadServer

OPEN_API_PATHS = {
    "/api/v1/auth/login",
    "/api/v1/auth/me",
    "/api/v1/auth/logout",
    "/api/v1/auth/oidc/login",
    "/api/v1/auth/oidc/callback",
}
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


@dataclass
class Env:
    url: str
    app: Any
    tokens: dict[str, str]
    opened: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        if who is not None:
            headers["authorization"] = f"Bearer {self.tokens[who]}"
        made = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.opened.append(made)
        return made


# One user per level: each is exactly one role short of the next level up.
PEOPLE = {
    "root": None,  # server admin
    "outsider": None,  # no project
    "viewer": Role.VIEWER,
    "editor": Role.EDITOR,
    "maintainer": Role.MAINTAINER,
    "padmin": Role.ADMIN,
}
SHORT_OF = {
    Role.VIEWER: "outsider",
    Role.EDITOR: "viewer",
    Role.MAINTAINER: "editor",
    Role.ADMIN: "maintainer",
    Role.SERVER_ADMIN: "padmin",
}


@pytest.fixture
def env(thread_server: ThreadServer) -> Iterator[Env]:
    holder: dict[str, Any] = {}

    def enforce(app: Any) -> Any:
        app.state.auth.enabled = True
        store = app.state.auth.store
        tokens = {}
        for name, role in PEOPLE.items():
            password = "a long password" if name == "editor" else None  # argon2 is slow on purpose
            store.create_user(name, password, is_admin=name == "root")
            if role is not None:
                store.set_member("default", name, role, actor="root")
            tokens[name] = store.create_token(name)[0]
        holder.update(app=app, tokens=tokens)
        return app

    with thread_server(wrap=enforce) as url:
        made = Env(url, holder["app"], holder["tokens"])
        yield made
        for client in made.opened:
            client.close()


def _concrete(path: str) -> str:
    return _PARAM.sub(
        lambda m: "1" if "id" in m.group(1) and "run" not in m.group(1) else "x1", path
    )


def _api_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None) or set()
        if is_api_path(route.path):
            found.extend((m, _concrete(route.path)) for m in sorted(methods - {"HEAD"}))
    return found


def test_every_route_refuses_the_unauthenticated_and_those_without_the_role(env: Env) -> None:
    routes = _api_routes(env.app)
    assert len(routes) > 100  # the native, registry, data and MLflow APIs at least
    anonymous = env.client()
    clients = {name: env.client(name) for name in SHORT_OF.values()}
    checked = 0
    for method, path in routes:
        needed = required_role(method, path)
        if needed == Role.OPEN:
            assert path in OPEN_API_PATHS, f"{method} {path} is open to anyone"
            continue
        body = {} if method in ("POST", "PUT", "PATCH") else None
        answer = anonymous.request(method, path, json=body)
        assert answer.status_code == 401, f"{method} {path}: {answer.status_code} {answer.text}"
        assert answer.json()["error_code"] == "UNAUTHENTICATED"
        short = SHORT_OF.get(needed)
        if short is None:  # any signed-in user may: nobody is short of it
            continue
        answer = clients[short].request(method, path, json=body)
        assert answer.status_code == 403, f"{method} {path} as {short}: {answer.text}"
        checked += 1
    assert checked > 100


def test_roles_allow_what_they_should(env: Env) -> None:
    with env.client("viewer") as viewer, env.client("editor") as editor:
        assert viewer.get("/api/v1/experiments").status_code == 200
        assert viewer.post("/api/v1/experiments", json={"name": "nope"}).status_code == 403
        assert editor.post("/api/v1/experiments", json={"name": "yes"}).status_code == 200
        assert editor.post("/api/v1/runs/search", json={"experiment_ids": ["0"]}).is_success
    with env.client("maintainer") as maint:
        assert maint.get("/api/v1/projects/default/members").status_code == 200
    me = env.client("editor").get("/api/v1/auth/me").json()
    assert me["user"]["name"] == "editor"
    assert me["roles"] == {"default": "editor"}
    assert env.client().get("/api/v1/auth/me").status_code == 401
    assert env.client().get("/health").status_code == 200


def test_an_editor_cannot_make_itself_admin_nor_a_project_admin_a_server_admin(env: Env) -> None:
    with env.client("editor") as editor:
        grab = editor.put("/api/v1/projects/default/members/editor", json={"role": "admin"})
        assert grab.status_code == 403
        assert editor.post("/api/v1/projects", json={"name": "mine"}).status_code == 403
    with env.client("padmin") as padmin:
        assert (
            padmin.post(
                "/api/v1/users", json={"name": "x", "password": "a long password", "admin": True}
            ).status_code
            == 403
        )
        assert (
            padmin.put("/api/v1/users/root/password", json={"password": "pwned!!!"}).status_code
            == 403
        )
        # A project admin manages its own project only.
        assert padmin.put(
            "/api/v1/projects/default/members/viewer", json={"role": "editor"}
        ).is_success
        env.app.state.auth.store.create_project("other", actor="root")
        denied = padmin.put("/api/v1/projects/other/members/padmin", json={"role": "admin"})
        assert denied.status_code == 403
        assert padmin.get("/api/v1/tokens", params={"user": "root"}).status_code == 403
    roles = env.client("editor").get("/api/v1/auth/me").json()["roles"]
    assert roles == {"default": "editor"}


def test_a_revoked_token_is_refused_at_once(env: Env) -> None:
    with env.client("editor") as editor:
        made = editor.post("/api/v1/tokens", json={"name": "tmp"}).json()
        fresh = made["token"]
        assert httpx.get(
            f"{env.url}/api/v1/experiments", headers={"authorization": f"Bearer {fresh}"}
        ).is_success
        assert editor.delete(f"/api/v1/tokens/{made['id']}").is_success
    again = httpx.get(f"{env.url}/api/v1/experiments", headers={"authorization": f"Bearer {fresh}"})
    assert again.status_code == 401


def test_a_member_of_one_project_cannot_reach_another_projects_runs_by_id(env: Env) -> None:
    store = env.app.state.auth.store
    store.create_project("secret", actor="root")
    svc = env.app.state.service.for_user("root", "secret")
    exp = svc.create_experiment("hidden")
    run_id = uuid.uuid4().hex
    svc.write(
        RunWrites(batch_id=uuid.uuid4().hex, new_runs=[NewRun(run_id, exp, "r", now_ms(), "root")])
    )
    with env.client("editor") as editor:  # editor in default, nothing in secret
        assert editor.get(f"/api/v1/runs/{run_id}").status_code == 403
        assert editor.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).status_code == 403
        metric = {"run_id": run_id, "key": "k", "value": 1, "timestamp": 1, "step": 0}
        assert editor.post("/api/2.0/mlflow/runs/log-metric", json=metric).status_code == 403
        rows = {"batch_id": "b", "metrics": [[run_id, "k", 1.0, 1, 0]]}
        assert editor.post("/api/v1/writes", json=rows).status_code == 403
        search = {"experiment_ids": [exp], "max_results": 10}
        assert editor.post("/api/2.0/mlflow/runs/search", json=search).status_code == 403
        comment = {"entity_type": "run", "entity_id": run_id, "body": "hi"}
        assert editor.post("/api/v1/comments", json=comment).status_code == 403
    with env.client("root") as root:
        assert root.get(f"/api/v1/runs/{run_id}").is_success


def test_session_cookies_are_httponly_and_state_changes_need_the_csrf_token(env: Env) -> None:
    with httpx.Client(base_url=env.url) as browser:
        bad = browser.post("/api/v1/auth/login", json={"username": "editor", "password": "nope"})
        assert bad.status_code == 401
        answer = browser.post(
            "/api/v1/auth/login", json={"username": "editor", "password": "a long password"}
        )
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        csrf = answer.json()["csrf_token"]
        assert browser.get("/api/v1/auth/me").json()["user"]["name"] == "editor"
        assert browser.post("/api/v1/experiments", json={"name": "c"}).status_code == 403
        made = browser.post(
            "/api/v1/experiments", json={"name": "c"}, headers={"x-csrf-token": csrf}
        )
        assert made.is_success
        assert browser.post("/api/v1/auth/logout").status_code == 403  # CSRF too
        logout = browser.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf})
        assert logout.is_success
        assert browser.get("/api/v1/auth/me").status_code == 401


def test_four_eyes_approval_needs_a_maintainer_other_than_the_author(env: Env) -> None:
    svc = env.app.state.service.for_user("maintainer", "default")
    run_id = uuid.uuid4().hex
    svc.write(
        RunWrites(
            batch_id=uuid.uuid4().hex, new_runs=[NewRun(run_id, "0", "r", now_ms(), "maintainer")]
        )
    )
    svc.put_artifact(run_id, "model/loopline-model.yaml", b"flavor: sklearn\n")
    reg = RegistryService(svc.db, svc.blobs, user="maintainer", project="default")
    reg.register_model(f"runs:/{run_id}/model", "clf")
    env.app.state.auth.store.create_user("other", None)
    env.app.state.auth.store.set_member("default", "other", Role.MAINTAINER, actor="root")
    other = env.app.state.auth.store.create_token("other")[0]
    with env.client("padmin") as padmin:
        assert padmin.put("/api/v1/projects/default/policy", json={"four_eyes": True}).is_success
    query = {"name": "clf", "version": 1}
    approve = {"decision": "approved", "comment": "ok"}
    with env.client("editor") as editor:
        assert (
            editor.post("/api/v1/registry/reviews", params=query, json=approve).status_code == 403
        )
    with env.client("maintainer") as author:
        own = author.post("/api/v1/registry/reviews", params=query, json=approve)
        assert own.status_code == 403
        assert "four-eyes" in own.json()["message"]
    headers = {"authorization": f"Bearer {other}"}
    ok = httpx.post(
        f"{env.url}/api/v1/registry/reviews", params=query, json=approve, headers=headers
    )
    assert ok.is_success, ok.text


def test_audit_records_who_what_and_from_where_and_only_admins_read_it(env: Env) -> None:
    with env.client("editor", **{"user-agent": "probe/1"}) as editor:
        editor.post("/api/v1/experiments", json={"name": "audited"})
        assert editor.get("/api/v1/audit").status_code == 403
    with env.client("root") as root:
        entries = root.get("/api/v1/audit", params={"actor": "editor"}).json()["entries"]
        lines = root.get("/api/v1/audit/export").text.splitlines()
    entry = next(e for e in entries if e["path"] == "/api/v1/experiments")
    assert entry["origin"] == "127.0.0.1"
    assert entry["user_agent"] == "probe/1"
    assert entry["method"] == "POST"
    assert entry["status"] == 200
    assert entry["authenticated"]
    assert len(lines) >= len(entries)


def test_comments_mentions_and_the_notifications_feed(env: Env) -> None:
    with env.client("editor") as editor:
        made = editor.post(
            "/api/v1/comments",
            json={"entity_type": "model_version", "entity_id": "clf/1", "body": "ping @viewer"},
        )
        assert made.status_code == 201
        assert made.json()["comment"]["mentions"] == ["viewer"]
    with env.client("viewer") as viewer:
        feed = viewer.get("/api/v1/notifications").json()["notifications"]
        assert [n["type"] for n in feed] == ["mention"]
        assert viewer.post(
            "/api/v1/notifications/read", json={"up_to_id": feed[0]["id"]}
        ).is_success
        assert (
            viewer.get("/api/v1/notifications", params={"unread": True}).json()["notifications"]
            == []
        )
        listed = viewer.get(
            "/api/v1/comments", params={"entity_type": "model_version", "entity_id": "clf/1"}
        )
        assert [c["author"] for c in listed.json()["comments"]] == ["editor"]


def test_security_headers_are_on_every_answer(env: Env) -> None:
    answer = env.client().get("/health")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in answer.headers["content-security-policy"]


def test_the_event_log_shows_only_projects_the_caller_can_read(env: Env) -> None:
    store = env.app.state.auth.store
    store.create_project("hidden", actor="root")
    env.app.state.service.for_user("root", "hidden").create_experiment("private-plans")
    env.app.state.service.for_user("root", "default").create_experiment("public-plans")

    def names(who: str) -> set[str]:
        with env.client(who) as client:
            answer = client.get("/api/v1/events", params={"kinds": "experiment.*"})
        assert answer.status_code == 200, answer.text
        return {str(e["entity_id"]) + str(e["payload"]) for e in answer.json()["events"]}

    seen_by_viewer = " ".join(names("viewer"))
    assert "public-plans" in seen_by_viewer
    assert "private-plans" not in seen_by_viewer
    assert "private-plans" in " ".join(names("root"))
    assert names("outsider") == set()

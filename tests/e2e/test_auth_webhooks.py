"""Notifications on a real server: the feed and webhooks POSTing to a real local receiver.

The server (uvicorn on 127.0.0.1, enforcement on) delivers mentions, approval requests
and monitoring alerts (``monitor.alert``) to a user's webhook (what their feed shows)
and to a project's webhook (all of the project's); the receiver is an HTTP server on
127.0.0.1 that fails its first request, so delivery must retry.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from loopline.auth.roles import Role
from loopline.events import emit
from loopline.registry.service import RegistryService
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import ThreadServer


class Receiver:
    """An HTTP server recording JSON POSTs by path; answers 503 to the first one."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.attempts += 1
                if outer.attempts == 1:
                    self.send_response(503)
                else:
                    outer.received.append((self.path, json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self, path: str) -> list[str]:
        return sorted(body["type"] for where, body in self.received if where == path)

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def test_mentions_approvals_and_alerts_reach_feeds_and_webhooks(
    thread_server: ThreadServer, receiver: Receiver
) -> None:
    holder: dict[str, Any] = {}

    def enforce(app: Any) -> Any:
        config = app.state.auth
        config.enabled = True
        config.webhooks.interval = 0.1
        config.webhooks.backoff = 0.05
        tokens = {}
        for name, role in (
            ("ana", Role.MAINTAINER),
            ("bo", Role.VIEWER),
            ("padmin", Role.ADMIN),
            ("cy", Role.MAINTAINER),
        ):
            config.store.create_user(name, None)
            config.store.set_member("default", name, role, actor="padmin")
            tokens[name] = config.store.create_token(name)[0]
        holder.update(app=app, tokens=tokens)
        return app

    with thread_server(wrap=enforce) as url:
        app, tokens = holder["app"], holder["tokens"]

        def client(who: str) -> httpx.Client:
            headers = {"authorization": f"Bearer {tokens[who]}"}
            return httpx.Client(base_url=url, headers=headers, timeout=30)

        with client("bo") as bo, client("padmin") as padmin, client("ana") as ana:
            mine = bo.post("/api/v1/webhooks", json={"url": f"{receiver.url}/bo"})
            assert mine.status_code == 201, mine.text
            denied = bo.post(
                "/api/v1/webhooks", json={"url": f"{receiver.url}/x", "project": "default"}
            )
            assert denied.status_code == 403
            project = padmin.post(
                "/api/v1/webhooks", json={"url": f"{receiver.url}/project", "project": "default"}
            )
            assert project.status_code == 201, project.text
            bad = bo.post("/api/v1/webhooks", json={"url": "file:///etc/passwd"})
            assert bad.status_code == 400

            # A mention (of bo), an approval request (for maintainers), an alert (for all).
            said = ana.post(
                "/api/v1/comments",
                json={"entity_type": "model_version", "entity_id": "clf/1", "body": "@bo see"},
            )
            assert said.status_code == 201
            svc = app.state.service.for_user("cy", "default")
            run_id = uuid.uuid4().hex
            svc.write(
                RunWrites(
                    batch_id=uuid.uuid4().hex, new_runs=[NewRun(run_id, "0", "r", now_ms(), "cy")]
                )
            )
            svc.put_artifact(run_id, "model/loopline-model.yaml", b"flavor: sklearn\n")
            RegistryService(svc.db, svc.blobs, user="cy", project="default").register_model(
                f"runs:/{run_id}/model", "clf"
            )
            with client("cy") as cy:
                asked = cy.post(
                    "/api/v1/registry/reviews",
                    params={"name": "clf", "version": 1},
                    json={"decision": "requested"},
                )
                assert asked.is_success, asked.text
            with svc.db.write() as conn:  # what a monitor run records (loopline.monitoring)
                payload = {"monitor": "churn-mon", "severity": "critical", "kind": "drift"}
                emit(conn, "monitor.alert", "monitor", "churn-mon", "scheduler", payload, 1)

            receiver.wait_for(5)
            assert receiver.types("/bo") == ["alert", "mention"]
            assert receiver.types("/project") == ["alert", "approval_requested", "mention"]
            assert receiver.attempts == 6  # the first POST got a 503 and was retried
            bo_body = next(b for p, b in receiver.received if p == "/bo" and b["type"] == "mention")
            assert bo_body["user"] == "bo"
            assert bo_body["actor"] == "ana"
            assert bo_body["project"] == "default"

            feed = {n["type"] for n in bo.get("/api/v1/notifications").json()["notifications"]}
            assert feed == {"mention", "alert"}
            ana_feed = ana.get("/api/v1/notifications").json()["notifications"]
            assert {n["type"] for n in ana_feed} == {"approval_requested", "alert"}

            listed = bo.get("/api/v1/webhooks").json()["webhooks"]
            assert [(h["delivered"], h["user"]) for h in listed] == [(2, "bo")]
            assert bo.get("/api/v1/webhooks", params={"project": "default"}).status_code == 403
            hook_id = project.json()["webhook"]["id"]
            assert bo.delete(f"/api/v1/webhooks/{hook_id}").status_code == 403
            assert padmin.delete(f"/api/v1/webhooks/{hook_id}").is_success
            assert padmin.get("/api/v1/webhooks", params={"project": "default"}).json() == {
                "webhooks": []
            }


def test_the_cli_manages_webhooks_on_a_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from loopline.cli.main import build_app

    app, runner = build_app(), CliRunner()
    env = {
        "LOOPLINE_HOME": str(tmp_path),
        "LOOPLINE_USER": "ana",
        "LOOPLINE_TRACKING_URI": "",
        "LOOPLINE_TRACKING_TOKEN": "",
    }

    def cli(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    assert cli("users", "create", "ana", "--no-password").exit_code == 0
    assert cli("projects", "webhooks", "add", "http://127.0.0.1:9/ana").exit_code == 0
    made = cli("projects", "webhooks", "add", "http://127.0.0.1:9/p", "--project", "default")
    assert made.exit_code == 0, made.output
    bad = cli("projects", "webhooks", "add", "ftp://example.com/x")
    assert bad.exit_code == 1
    assert "not a webhook URL" in bad.output
    mine = json.loads(cli("projects", "webhooks", "list", "--json").stdout)
    assert [h["url"] for h in mine] == ["http://127.0.0.1:9/ana"]
    listed = cli("projects", "webhooks", "list", "--project", "default", "--json")
    project = json.loads(listed.stdout)
    assert [h["project"] for h in project] == ["default"]
    assert cli("projects", "webhooks", "remove", str(project[0]["id"])).exit_code == 0
    assert json.loads(cli("projects", "webhooks", "list", "-p", "default", "--json").stdout) == []

"""`loopline ci comment` against a local stand-in for GitHub's and GitLab's comment APIs.

The stand-in is a real HTTP server that keeps comments in memory and records every
call, so the tests see exactly what a CI job would send.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "ghp_s3cr3t-token-value"


class _Forge:
    """In-memory comments keyed by thread path; ``fail`` forces an error status."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 1000
        self.fail: int | None = None

    def seed(self, thread: str, n: int) -> None:
        for _ in range(n):
            self.next_id += 1
            self.comments.setdefault(thread, []).append({"id": self.next_id, "body": "lgtm"})


def _handler(forge: _Forge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            forge.calls.append((method, self.path, dict(self.headers.items()), body))
            if forge.fail:
                self._answer(forge.fail, {"message": f"forbidden for token {TOKEN}"})
                return
            path = url.path
            if method == "GET":
                page = int(parse_qs(url.query).get("page", ["1"])[0])
                items = forge.comments.get(path, [])
                self._answer(200, items[(page - 1) * 100 : page * 100])
            elif method == "POST":
                forge.next_id += 1
                item = {"id": forge.next_id, "body": body["body"], "html_url": f"http://x{path}"}
                forge.comments.setdefault(path, []).append(item)
                self._answer(201, item)
            else:  # PATCH (GitHub) or PUT (GitLab): find the comment anywhere by id
                comment_id = int(path.rsplit("/", 1)[1])
                for items in forge.comments.values():
                    for item in items:
                        if item["id"] == comment_id:
                            item["body"] = body["body"]
                            self._answer(200, item)
                            return
                self._answer(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_PUT(self) -> None:
            self._handle("PUT")

    return Handler


@pytest.fixture
def forge() -> Any:
    state = _Forge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield state
    server.shutdown()
    server.server_close()


def _comment(args: list[str], body: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GITLAB_TOKEN")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", "ci", "comment", *args, "--body-file", "-"],
        input=body,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def test_github_posts_once_then_updates_its_own_comment(forge: Any) -> None:
    thread = "/repos/acme/churn/issues/7/comments"
    forge.seed(thread, 150)  # ours will land on the second page
    args = ["--provider", "github", "--repo", "acme/churn", "--pr", "7", "--api-url", forge.url]

    first = _comment(args, "## Report v1", GITHUB_TOKEN=TOKEN)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created comment")
    second = _comment(args, "## Report v2", GITHUB_TOKEN=TOKEN)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("updated comment")

    ours = [c for c in forge.comments[thread] if "Report" in c["body"]]
    assert len(ours) == 1
    assert ours[0]["body"] == "<!-- loopline-report -->\n## Report v2"
    methods = [m for m, *_ in forge.calls]
    assert methods.count("POST") == 1
    assert methods.count("PATCH") == 1
    patch = next(c for c in forge.calls if c[0] == "PATCH")
    assert patch[1] == f"/repos/acme/churn/issues/comments/{ours[0]['id']}"
    headers = {k.lower(): v for k, v in patch[2].items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"


def test_gitlab_notes_on_a_nested_project(forge: Any) -> None:
    args = ["--provider", "gitlab", "--repo", "group/sub/churn", "--pr", "3"]
    env = {"GITLAB_TOKEN": TOKEN, "CI_API_V4_URL": forge.url + "/api/v4"}
    assert _comment(args, "first", **env).returncode == 0
    result = _comment(args, "second", **env)
    assert result.returncode == 0, result.stderr
    thread = "/api/v4/projects/group%2Fsub%2Fchurn/merge_requests/3/notes"
    assert [c["body"] for c in forge.comments[thread]] == ["<!-- loopline-report -->\nsecond"]
    put = next(c for c in forge.calls if c[0] == "PUT")
    assert {k.lower(): v for k, v in put[2].items()}["private-token"] == TOKEN


def test_api_error_is_clear_nonzero_and_never_prints_the_token(forge: Any) -> None:
    forge.fail = 403
    args = ["--provider", "github", "--repo", "acme/churn", "--pr", "7", "--api-url", forge.url]
    result = _comment(args, "body", GITHUB_TOKEN=TOKEN)
    assert result.returncode == 1
    assert "403" in result.stderr
    assert "permission" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_missing_token_names_the_variable(forge: Any) -> None:
    args = ["--provider", "github", "--repo", "acme/churn", "--pr", "7", "--api-url", forge.url]
    result = _comment(args, "body")
    assert result.returncode == 1
    assert "GITHUB_TOKEN" in result.stderr
    assert forge.calls == []


def test_bad_repo_is_a_usage_error_before_any_call(forge: Any) -> None:
    args = ["--provider", "github", "--repo", "../etc", "--pr", "7", "--api-url", forge.url]
    result = _comment(args, "body", GITHUB_TOKEN=TOKEN)
    assert result.returncode == 1
    assert "OWNER/NAME" in result.stderr
    assert forge.calls == []

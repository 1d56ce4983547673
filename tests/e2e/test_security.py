"""Attacks on a real ``loopline server`` with enforcement on (a subprocess on 127.0.0.1).

Path traversal in artifact and dataset paths, filter-string injection, oversized
payloads, reuse of revoked or expired credentials, privilege escalation, session
fixation and cross-site request forgery. Every answer must be a clean 4xx (never a
5xx, never someone else's data) and nothing may be written outside its root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from loopline.auth.roles import Role
from loopline.auth.store import AuthStore
from loopline.config import Settings
from loopline.data.manifest import FORMAT
from loopline.store.digest import Digest
from loopline.store.metadata import Database

from .conftest import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LIMIT = 1 << 20  # the server's request-body limit in these tests
PASSWORD = "a long password"
PEOPLE = {
    "root": None,
    "viewer": Role.VIEWER,
    "editor": Role.EDITOR,
    "maintainer": Role.MAINTAINER,
    "padmin": Role.ADMIN,
}


@dataclass
class Site:
    server: ServerProcess
    home: Path
    tokens: dict[str, str]
    store: AuthStore

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        if who is not None:
            headers["authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("secure-home")
    store = AuthStore(Database(Settings(home=home).metadata_url))
    tokens = {}
    for name, role in PEOPLE.items():
        store.create_user(name, PASSWORD if name == "editor" else None, is_admin=name == "root")
        if role is not None:
            store.set_member("default", name, role, actor="root")
        tokens[name] = store.create_token(name)[0]
    store.create_project("secret", actor="root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOPLINE_AUTH", "1")
        server = ServerProcess(home, max_body_bytes=LIMIT)
    try:
        yield Site(server, home, tokens, store)
    finally:
        server.stop()
        store.db.close()


def _run(site: Site, experiment: str = "sec") -> tuple[str, str]:
    """A run of a fresh experiment in the default project: (experiment id, run id)."""
    with site.client("editor") as editor:
        made = editor.post(
            "/api/2.0/mlflow/experiments/create", json={"name": f"{experiment}-{uuid.uuid4().hex}"}
        )
        assert made.status_code == 200, made.text
        exp_id = made.json()["experiment_id"]
        run = editor.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id})
        assert run.status_code == 200, run.text
        return exp_id, run.json()["run"]["info"]["run_id"]


def _clean_4xx(answer: httpx.Response, *statuses: int) -> None:
    # 405: a client that removes dot segments itself lands on another route.
    assert answer.status_code in (statuses or (400, 404, 405)), (
        answer.request.method,
        answer.request.url.raw_path,
        answer.status_code,
        answer.text,
    )
    assert "error_code" in answer.json()


def _raw_path(site: Site, method: str, raw: str, **kwargs: Any) -> httpx.Response:
    """A request whose path goes out byte for byte (no client-side dot-segment cleanup)."""
    with site.client("editor") as editor:
        request = editor.build_request(method, "/", **kwargs)
        request.url = request.url.copy_with(raw_path=raw.encode())
        return editor.send(request)


# -- path traversal ------------------------------------------------------------------------------

TRAVERSALS = (
    "..%2F..%2Fescape.txt",
    "%2E%2E/%2E%2E/escape.txt",
    "a/../../escape.txt",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cescape.txt",
    "a%00b.txt",
)


def test_artifact_paths_cannot_leave_the_run(site: Site) -> None:
    exp_id, run_id = _run(site)
    for bad in TRAVERSALS:
        native = f"/api/v1/runs/{run_id}/artifacts/{bad}"
        _clean_4xx(_raw_path(site, "PUT", native, content=b"pwned"))
        _clean_4xx(_raw_path(site, "GET", native))
        proxied = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{bad}"
        stored = _raw_path(site, "PUT", proxied, content=b"pwned")
        if bad.startswith("%2F"):  # ...artifacts//etc/passwd: the run's etc/passwd
            assert stored.is_success
            continue
        _clean_4xx(stored)
        _clean_4xx(_raw_path(site, "GET", proxied))
    with site.client("editor") as editor:
        for bad in ("../..", "/etc", "a/../../.."):
            listed = editor.get(f"/api/v1/runs/{run_id}/artifacts", params={"path": bad})
            _clean_4xx(listed, 400)
            if bad.startswith("/"):  # inside the proxy's path it is just a doubled slash
                continue
            proxy_listing = editor.get(
                "/api/2.0/mlflow-artifacts/artifacts",
                params={"path": f"{exp_id}/{run_id}/artifacts/{bad}"},
            )
            _clean_4xx(proxy_listing, 400)
            listing = editor.get(
                "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": bad}
            )
            _clean_4xx(listing, 400)
        files = editor.get(f"/api/v1/runs/{run_id}/artifacts", params={"recursive": True})
        assert [f["path"] for f in files.json()["files"]] == ["etc/passwd"]
    assert not list(site.home.parent.rglob("escape.txt"))


def _upload(client: httpx.Client, content: bytes) -> str:
    digest = str(Digest.of_bytes(content))
    put = client.put(f"/api/v1/data/blobs/{digest}", content=content)
    assert put.is_success, put.text
    return digest


def _manifest(path: str, content: bytes) -> bytes:
    import orjson

    row = [path, len(content), Digest.of_bytes(content).hex, 0]
    return orjson.dumps({"format": FORMAT, "kind": "dir", "entries": [row]})


# A version naming a file outside its folder: refused, and never written anywhere.
def test_a_dataset_version_cannot_name_files_outside_its_folder(site: Site, tmp_path: Path) -> None:
    content = b"pwned\n"
    work = tmp_path / "work"
    work.mkdir()
    with site.client("editor") as editor:
        _upload(editor, content)
        for i, bad in enumerate(("../escape.txt", "a/../../escape.txt", "/tmp/escape.txt")):
            digest = _upload(editor, _manifest(bad, content))
            answer = editor.post(
                "/api/v1/data/versions", json={"name": f"evil{i}", "digest": digest}
            )
            if answer.is_success:  # then checking it out must refuse
                dest = work / f"dest{i}"
                out = _cli(site, work, "data", "checkout", f"evil{i}@1", str(dest))
                assert out.returncode == 1, out.stdout
                assert "Traceback" not in out.stderr
            else:
                _clean_4xx(answer, 400)
            assert not list(tmp_path.rglob("escape.txt"))


def _cli(
    site: Site, cwd: Path, *args: str, who: str = "editor"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOOPLINE_HOME": str(cwd / ".client-home"),
        "LOOPLINE_TRACKING_URI": site.url,
        "LOOPLINE_TRACKING_TOKEN": site.tokens[who],
    }
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_data_commands_refuse_paths_and_links_that_escape(site: Site, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    added = _cli(site, tmp_path, "data", "add", str(tree), "--name", "safe")
    assert added.returncode == 0, added.stderr

    for bad in ("../..", "/etc", "sub/../../.."):
        listed = _cli(site, tmp_path, "data", "ls", "safe@1", bad)
        assert listed.returncode in (0, 1), listed.stderr
        assert "Traceback" not in listed.stderr
        assert "secret" not in listed.stdout

    # A link in the tree pointing outside it is refused, not followed.
    (tree / "leak").symlink_to(outside / "secret.txt")
    leaked = _cli(site, tmp_path, "data", "add", str(tree), "--name", "safe")
    assert leaked.returncode == 1
    assert "Traceback" not in leaked.stderr
    (tree / "leak").unlink()

    # Checking out over a folder whose subfolder is a link to elsewhere writes nothing there.
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    forced = _cli(site, tmp_path, "data", "checkout", "safe@1", str(dest), "--force")
    assert forced.returncode == 1, forced.stdout
    assert "Traceback" not in forced.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# -- filter injection ------------------------------------------------------------------------------

INJECTIONS = (
    "params.model = 'x' OR 1=1",
    "params.model = 'x' OR '1'='1'",
    "params.model = 'x'' OR ''1''=''1'",
    "params.model = 'x'; DROP TABLE runs; --",
    "params.model = 'x' -- ",
    "params.model = 'x' /* */",
    "metrics.auc > 0 UNION SELECT name, password_hash FROM users",
    "params.`model' OR 1=1 --` = 'x'",
    'tags."a\\" OR 1=1 --" = \'x\'',
    "attributes.run_id IN ('x') OR 1=1",
    "params.model LIKE 'x%' ESCAPE '\\'",
    "params.model = 'x\\' OR 1=1 --'",
    "attributes.status = 'FINISHED' AND (SELECT 1)",
    "metrics.auc > 0x10",
    'params.model = "x" OR "1"="1"',
    "1=1",
    "params.model = 'x'\x00 OR 1=1",
)


def test_filter_strings_cannot_inject_sql(site: Site) -> None:
    exp_id, run_id = _run(site, "filters")
    with site.client("editor") as editor:
        editor.post(
            "/api/2.0/mlflow/runs/log-parameter",
            json={"run_id": run_id, "key": "model", "value": "rf"},
        )
        before = editor.post("/api/v1/runs/search", json={"experiment_ids": [exp_id]}).json()
        for text in INJECTIONS:
            for path, body in (
                ("/api/v1/runs/search", {"experiment_ids": [exp_id], "filter": text}),
                ("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "filter": text}),
            ):
                answer = editor.post(path, json=body)
                assert answer.status_code in (200, 400), (path, text, answer.text)
                assert "argon2" not in answer.text
                if answer.status_code == 400:
                    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
                else:  # read as a literal: nothing has such a value
                    assert not answer.json().get("runs"), (path, text, answer.text)
        after = editor.post("/api/v1/runs/search", json={"experiment_ids": [exp_id]}).json()
        assert after == before
    assert len(site.store.list_users()) == len(PEOPLE)


# -- oversized payloads ------------------------------------------------------------------------------


def _head_only(site: Site, method: str, path: str, length: int, token: str) -> bytes:
    """Declare a huge body, send none of it: the answer must come anyway."""
    parts = urlsplit(site.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        head = sock.recv(65536)
        while b"\r\n\r\n" in head and not head.endswith(b"}") and len(head) < 65536:
            more = sock.recv(65536)
            if not more:
                break
            head += more
        return head


def test_oversized_bodies_are_refused_before_they_are_read(site: Site) -> None:
    _, run_id = _run(site)
    digest = str(Digest.of_bytes(b"x"))
    routes = (
        ("POST", "/api/v1/writes"),
        ("POST", "/api/2.0/mlflow/runs/log-batch"),
        ("POST", "/api/v1/experiments"),
        ("PUT", f"/api/v1/runs/{run_id}/artifacts/big.bin"),
        ("PUT", f"/api/v1/data/blobs/{digest}"),
        ("POST", "/api/v1/comments"),
    )
    for method, path in routes:
        started = time.monotonic()
        head = _head_only(site, method, path, 50 * LIMIT * 1024, site.tokens["editor"])
        assert head.startswith(b"HTTP/1.1 413"), (path, head[:300])
        assert b"REQUEST_LIMIT_EXCEEDED" in head
        assert time.monotonic() - started < 5

    # Without a declared length (chunked), the body is counted as it streams in.
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b" " * (LIMIT // 2)

    with site.client("editor") as editor:
        answer = editor.post(
            "/api/v1/writes", content=chunks(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
        answer = editor.put(f"/api/v1/runs/{run_id}/artifacts/big.bin", content=chunks())
        assert answer.status_code == 413, answer.text
        assert editor.get(f"/api/v1/runs/{run_id}/artifacts").json()["files"] == []


# -- credentials after revocation, expiry, disabling, sign-out ---------------------------------


def _status(site: Site, token: str, path: str = "/api/v1/experiments") -> int:
    return httpx.get(f"{site.url}{path}", headers={"authorization": f"Bearer {token}"}).status_code


def test_revoked_and_expired_tokens_are_refused_everywhere(site: Site, tmp_path: Path) -> None:
    store = site.store
    store.create_user("temp", None)
    store.set_member("default", "temp", Role.EDITOR, actor="root")
    revoked, info = store.create_token("temp", name="revoked")
    assert _status(site, revoked) == 200
    site.tokens["temp"] = revoked
    gone = _cli(site, tmp_path, "tokens", "revoke", str(info["id"]), who="temp")
    assert gone.returncode == 0, gone.stderr
    for path in ("/api/v1/experiments", "/api/2.0/mlflow/experiments/search", "/api/v1/auth/me"):
        assert _status(site, revoked, path) == 401
    basic = httpx.get(f"{site.url}/api/v1/experiments", auth=("temp", revoked))
    assert basic.status_code == 401

    short, _ = store.create_token("temp", name="short", expires_in_days=1.5 / 86_400)
    assert _status(site, short) == 200
    time.sleep(1.6)
    assert _status(site, short) == 401

    kept, _ = store.create_token("temp", name="kept")
    assert _status(site, kept) == 200
    store.set_disabled("temp", True, actor="root")
    assert _status(site, kept) == 401
    store.set_disabled("temp", False, actor="root")
    assert _status(site, kept) == 200


def test_a_session_ends_for_good_at_logout_and_password_change(site: Site) -> None:
    login = {"username": "editor", "password": PASSWORD}
    with httpx.Client(base_url=site.url) as browser:
        assert browser.post("/api/v1/auth/login", json=login).is_success
        cookie = browser.cookies["loopline_session"]
        csrf = browser.get("/api/v1/auth/me").json()["csrf_token"]
        assert browser.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf}).is_success
    replay = httpx.get(f"{site.url}/api/v1/auth/me", cookies={"loopline_session": cookie})
    assert replay.status_code == 401
    with httpx.Client(base_url=site.url) as browser:
        assert browser.post("/api/v1/auth/login", json=login).is_success
        cookie = browser.cookies["loopline_session"]
    site.store.set_password("editor", PASSWORD, actor="root")
    replay = httpx.get(f"{site.url}/api/v1/auth/me", cookies={"loopline_session": cookie})
    assert replay.status_code == 401


# -- privilege escalation ------------------------------------------------------------------------

ESCALATIONS = (
    ("PUT", "/api/v1/projects/default/members/{me}", {"role": "admin"}),
    ("PUT", "/api/v1/projects/default/members/{me}", {"role": "maintainer"}),
    ("PUT", "/api/v1/projects/secret/members/{me}", {"role": "viewer"}),
    ("DELETE", "/api/v1/projects/default/members/padmin", None),
    ("PUT", "/api/v1/projects/default/policy", {"four_eyes": False}),
    ("POST", "/api/v1/projects", {"name": "mine"}),
    ("POST", "/api/v1/users", {"name": "sock", "password": PASSWORD, "admin": True}),
    ("POST", "/api/v1/users/root/disable", None),
    ("POST", "/api/v1/users/{me}/enable", None),
    ("PUT", "/api/v1/users/root/password", {"password": "taken over"}),
    ("PUT", "/api/v1/users/{me}/password", {"password": "taken over"}),
    ("POST", "/api/v1/tokens?user=root", {"name": "stolen"}),
    ("GET", "/api/v1/tokens?user=root", None),
    ("DELETE", "/api/v1/tokens/1?user=root", None),
    ("GET", "/api/v1/audit", None),
    ("GET", "/api/v1/users", None),
    ("PUT", "/api/v1/registry/aliases?name=m&alias=champion", {"version": 1}),
)


@pytest.mark.parametrize("who", ["editor", "maintainer"])
def test_no_route_lets_a_member_raise_its_own_rights(site: Site, who: str) -> None:
    with site.client(who) as client:
        for method, template, body in ESCALATIONS:
            path = template.format(me=who)
            if who == "maintainer" and "registry/aliases" in path:
                continue  # maintainers do move aliases
            answer = client.request(method, path, json=body)
            assert answer.status_code == 403, (who, method, path, answer.text)
        # Declaring another identity or project in headers changes nothing.
        spoof = client.post(
            "/api/v1/projects/default/members/" + who,
            json={"role": "admin"},
            headers={"x-loopline-user": "root", "x-loopline-project": "secret"},
        )
        assert spoof.status_code == 403
        me = client.get("/api/v1/auth/me", headers={"x-loopline-user": "root"}).json()
    assert me["user"] == {"name": who, "is_admin": False}
    assert me["roles"] == {"default": PEOPLE[who].label}
    with site.client(who) as client:
        made = client.post(
            "/api/2.0/mlflow/experiments/create",
            json={"name": f"spoofed-{who}"},
            headers={"x-loopline-user": "root"},
        )
        assert made.is_success
        exp = client.get(
            "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": made.json()["experiment_id"]},
        )
    with site.client("root") as root:
        entries = root.get("/api/v1/audit", params={"actor": who}).json()["entries"]
    assert [e for e in entries if e["path"] == "/api/2.0/mlflow/experiments/create"]
    assert exp.is_success


def test_a_project_admin_stays_inside_its_project(site: Site) -> None:
    with site.client("padmin") as padmin:
        for method, path, body in (
            ("PUT", "/api/v1/projects/secret/members/padmin", {"role": "admin"}),
            ("POST", "/api/v1/users", {"name": "helper", "password": PASSWORD, "admin": True}),
            ("PUT", "/api/v1/users/root/password", {"password": "taken over"}),
            ("POST", "/api/v1/users/root/disable", None),
        ):
            assert padmin.request(method, path, json=body).status_code == 403, path
    assert site.store.get_user("padmin")["is_admin"] is False


# -- session fixation and CSRF ---------------------------------------------------------------------


def test_login_ignores_a_planted_session_and_state_changes_need_the_csrf_token(
    site: Site,
) -> None:
    planted = "attacker-chosen-session-id"
    login = {"username": "editor", "password": PASSWORD}
    with httpx.Client(base_url=site.url, cookies={"loopline_session": planted}) as browser:
        answer = browser.post("/api/v1/auth/login", json=login)
        assert answer.is_success
        issued = answer.cookies["loopline_session"]
        assert issued != planted
        assert "samesite=lax" in answer.headers["set-cookie"].lower()
        assert answer.headers["cache-control"] == "no-store"
        csrf = answer.json()["csrf_token"]
    fixed = httpx.get(f"{site.url}/api/v1/auth/me", cookies={"loopline_session": planted})
    assert fixed.status_code == 401

    cookies = {"loopline_session": issued}
    # A form posted from another site: no CSRF header, any content type.
    for headers, content in (
        ({"content-type": "application/json"}, b'{"name": "csrf"}'),
        ({"content-type": "text/plain"}, b'{"name": "csrf"}'),
        ({"content-type": "application/x-www-form-urlencoded"}, b"name=csrf"),
        ({"content-type": "application/json", "x-csrf-token": "guess"}, b'{"name": "csrf"}'),
    ):
        forged = httpx.post(
            f"{site.url}/api/v1/experiments", cookies=cookies, headers=headers, content=content
        )
        assert forged.status_code == 403, forged.text
    # Another user's CSRF token does not fit this session.
    with httpx.Client(base_url=site.url) as other:
        other.post("/api/v1/auth/login", json=login)
        foreign = other.get("/api/v1/auth/me").json()["csrf_token"]
    crossed = httpx.post(
        f"{site.url}/api/v1/experiments",
        cookies=cookies,
        headers={"x-csrf-token": foreign},
        json={"name": "csrf"},
    )
    assert crossed.status_code == 403
    ok = httpx.post(
        f"{site.url}/api/v1/experiments",
        cookies=cookies,
        headers={"x-csrf-token": csrf},
        json={"name": f"csrf-{uuid.uuid4().hex}"},
    )
    assert ok.is_success, ok.text
    # A login form posted cross-site (form-encoded) does not sign anyone in.
    form = httpx.post(f"{site.url}/api/v1/auth/login", data=login)
    assert form.status_code == 400
    assert "set-cookie" not in form.headers


def test_a_remembered_password_check_ends_with_any_change_to_the_user(site: Site) -> None:
    """Changes made by another process (here: straight in the store) apply at once."""
    store = site.store
    store.create_user("basic", PASSWORD)
    store.set_member("default", "basic", Role.VIEWER, actor="root")

    def status(password: str = PASSWORD) -> int:
        answer = httpx.get(f"{site.url}/api/v1/experiments", auth=("basic", password))
        return answer.status_code

    assert status() == 200
    assert status() == 200  # the remembered check
    store.remove_member("default", "basic", actor="root")
    assert status() == 403  # roles are read again on every request
    store.set_member("default", "basic", Role.VIEWER, actor="root")
    store.set_disabled("basic", True, actor="root")
    assert status() == 401
    store.set_disabled("basic", False, actor="root")
    assert status() == 200
    store.set_password("basic", "another long password", actor="root")
    assert status() == 401
    assert status("another long password") == 200

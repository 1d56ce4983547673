"""Every ``loopline data`` command against a real ``loopline server``, and chunked uploads.

The CLI runs with ``LOOPLINE_TRACKING_URI`` pointing at a server subprocess on
127.0.0.1: tags and their history, lineage both ways, status, diff, verify and gc
are answered by the server. Files larger than the server's request limit go up in
chunks, and an upload interrupted half-way resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

import loopline
import loopline.data as data
from loopline.cli.data import app
from loopline.config import reset_settings
from loopline.data import api
from loopline.data.http import DataHttpClient
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.e2e.conftest import ServerProcess, ThreadServer

API = "/api/v1/data"


def _use(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", url)
    reset_settings()
    api.close()


@pytest.fixture
def client(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _use(server_url, monkeypatch)
    yield server_url
    api.close()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_data_command_works_through_the_server(client: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("alpha\n")
    (tree / "t.csv").write_text("x,y\n1,a\n2,b\n")
    first = _cli("add", str(tree), "--name", "ops", "--tag", "prod")
    assert (first["ref"], first["tags"]) == ("ops@1", ["prod"])

    assert _cli("status", "ops")["changes"] == []
    (tree / "a.txt").write_text("alpha, edited\n")
    (tree / "t.csv").write_text("x,y,z\n1,a,0\n2,b,0\n3,c,0\n")
    (tree / "new.txt").write_text("new\n")
    status = _cli("status", "ops")
    assert sorted((c["path"], c["change"]) for c in status["changes"]) == [
        ("a.txt", "modified"),
        ("new.txt", "added"),
        ("t.csv", "modified"),
    ]
    assert _cli("add", str(tree), "--name", "ops")["ref"] == "ops@2"

    diff = _cli("diff", "ops@prod", "ops@latest")
    assert {c["path"] for c in diff["changes"]} == {"a.txt", "new.txt", "t.csv"}
    (table,) = diff["tables"]
    assert (table["old_rows"], table["new_rows"], table["added_columns"]) == (2, 3, ["z"])

    moved = _cli("tag", "ops@2", "prod")
    assert (moved["from_version"], moved["to_version"]) == (1, 2)
    history = _cli("tags", "ops")
    assert [(h["tag"], h["from_version"], h["to_version"]) for h in history] == [
        ("prod", None, 1),
        ("prod", 1, 2),
    ]
    assert data.get("ops@prod").version == 2

    with loopline.start_run() as run:
        data.log_input("ops@1", context="training")
    used = _cli("lineage", "ops@1")
    assert [(r["run_id"], r["context"]) for r in used["runs"]] == [(run.info.run_id, "training")]
    read = _cli("lineage", "--run", run.info.run_id)
    assert read["datasets"] == [["ops@1", "training"]]

    report = _cli("verify")
    assert report["ok"]
    assert report["blobs_checked"] >= 6
    assert _cli("verify", "ops@1")["ok"]
    swept = _cli("gc", "--dry-run", "--grace", "0s")
    assert swept["dry_run"]
    assert swept["blobs_deleted"] == 0  # everything is referenced


def test_gc_through_the_server_removes_what_nothing_references(client: str, tmp_path: Path) -> None:
    blob = str(Digest.of_bytes(b"stray"))  # uploaded, then named by no version
    stray = DataHttpClient(client)
    try:
        stray.put_blob(Digest.parse(blob), b"stray")
        assert stray.missing([blob]) == set()
        assert data.gc(dry_run=True, grace_seconds=0).blobs_deleted >= 1
        assert stray.missing([blob]) == set()  # a dry run deletes nothing
        assert data.gc(grace_seconds=0).blobs_deleted >= 1
        assert stray.missing([blob]) == {blob}
    finally:
        stray.close()


# -- chunked uploads --------------------------------------------------------------------------
@pytest.fixture
def small_server(
    start_server: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A server refusing bodies over 1 MiB, so files of a few MiB must go in chunks."""
    server = start_server(max_body_bytes=1 << 20)
    _use(server.url, monkeypatch)
    yield server.url
    api.close()


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(offset, size) of every chunk sent."""
    sent: list[tuple[int, int]] = []
    original = DataHttpClient._put_chunk

    def counting(self: DataHttpClient, digest: Any, offset: int, body: bytes) -> int:
        sent.append((offset, len(body)))
        return original(self, digest, offset, body)

    monkeypatch.setattr(DataHttpClient, "_put_chunk", counting)
    return sent


def test_a_file_larger_than_the_request_limit_goes_up_in_chunks(
    small_server: str, tmp_path: Path, chunks: list[tuple[int, int]]
) -> None:
    big = tmp_path / "big.bin"
    content = os.urandom(3 * (1 << 20) + 12345)
    big.write_bytes(content)
    with httpx.Client(base_url=small_server + API) as http:  # a plain PUT is refused
        refused = http.put("/blobs/blake3:" + "0" * 64, content=content)
        assert refused.status_code == 413
    version = data.add(big, "large")
    assert sum(size for _, size in chunks) == len(content)
    assert max(size for _, size in chunks) <= 1 << 19  # half the limit, as the server said
    assert version.total_size == len(content)
    data.checkout("large@1", tmp_path / "out.bin")  # a file version checks out as a file
    assert (tmp_path / "out.bin").read_bytes() == content


def test_an_interrupted_upload_resumes_where_it_stopped(
    small_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.bin"
    content = os.urandom(4 << 20)
    big.write_bytes(content)
    sent: list[int] = []
    original = DataHttpClient._put_chunk

    def dying(self: DataHttpClient, digest: Any, offset: int, body: bytes) -> int:
        if len(sent) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a dropped connection) after three chunks
        sent.append(len(body))
        return original(self, digest, offset, body)

    monkeypatch.setattr(DataHttpClient, "_put_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        data.add(big, "resumed")
    with pytest.raises(loopline.errors.NotFoundError):
        data.get("resumed")  # nothing was recorded
    held = sum(sent)
    digest = Digest.of_bytes(content)
    with httpx.Client(base_url=small_server + API) as http:
        state = http.get(f"/uploads/{digest}").json()
    assert (state["offset"], state["stored"]) == (held, False)

    resent: list[int] = []

    def counting(self: DataHttpClient, digest: Any, offset: int, body: bytes) -> int:
        resent.append(offset)
        return original(self, digest, offset, body)

    monkeypatch.setattr(DataHttpClient, "_put_chunk", counting)
    version = data.add(big, "resumed")
    assert resent[0] == held  # the first chunk sent starts where the server stopped
    assert version.ref == "resumed@1"
    assert data.get("resumed@1").file.read_bytes() == content


def test_a_client_killed_mid_upload_leaves_nothing_recorded_and_the_upload_resumes(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunks: list[tuple[int, int]],
) -> None:
    server = start_server(max_body_bytes=1 << 20)
    big = tmp_path / "big.bin"
    content = os.urandom(32 << 20)
    big.write_bytes(content)
    digest = Digest.of_bytes(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env |= {"LOOPLINE_TRACKING_URI": server.url, "LOOPLINE_HOME": str(tmp_path / "client")}
    command = ["data", "add", str(big), "--name", "killed"]
    adder = subprocess.Popen(
        [sys.executable, "-c", "from loopline.cli.main import main; main()", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with httpx.Client(base_url=server.url + API) as http:
        deadline = time.monotonic() + 60
        while http.get(f"/uploads/{digest}").json()["offset"] < 2 << 20:
            assert adder.poll() is None, "the add finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        adder.send_signal(signal.SIGKILL)
        adder.wait()
        held = http.get(f"/uploads/{digest}").json()["offset"]
        assert 0 < held < len(content)
        assert http.get("/version", params={"ref": "killed"}).status_code == 404

    _use(server.url, monkeypatch)
    try:
        version = data.add(big, "killed")
        assert chunks[0][0] == held  # resumed, not restarted
        assert sum(size for _, size in chunks) == len(content) - held
        assert version.ref == "killed@1"
        assert data.get("killed@1").file.read_bytes() == content
    finally:
        api.close()


def test_a_corrupt_blob_on_the_server_is_named_and_never_checked_out(
    start_server: Callable[..., ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server()
    _use(server.url, monkeypatch)
    try:
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "good.txt").write_text("fine\n")
        (tree / "bad.txt").write_text("about to rot\n")
        version = data.add(tree, "rotting")
        entry = version.manifest.by_path["bad.txt"]
        (stored,) = (tmp_path / "server-0" / "blobs").rglob(entry.digest[2:])
        stored.chmod(0o644)
        stored.write_text("rotten bytes\n")
        with pytest.raises(loopline.errors.IntegrityError) as caught:
            data.checkout("rotting@1", tmp_path / "out")
        assert "bad.txt" in str(caught.value)
        assert entry.digest in str(caught.value)
        assert not (tmp_path / "out" / "bad.txt").exists()
        report = data.verify()
        assert [c[0] for c in report.corrupt] == [str(entry.blob)]
    finally:
        api.close()


def test_the_upload_api_checks_offsets_and_content(client: str) -> None:
    content = os.urandom(300_000)
    digest = Digest.of_bytes(content)
    with httpx.Client(base_url=client + API) as http:
        assert http.get(f"/uploads/{digest}").json()["offset"] == 0
        first = http.put(f"/uploads/{digest}", params={"offset": 0}, content=content[:100_000])
        assert first.json() == {"offset": 100_000}
        again = http.put(f"/uploads/{digest}", params={"offset": 0}, content=content[:100_000])
        assert again.status_code == 400
        assert "100000" in again.json()["hint"]  # where the next chunk must start
        wrong = http.put(f"/uploads/{digest}", params={"offset": 100_000}, content=b"x" * 200_000)
        assert wrong.json() == {"offset": 300_000}
        refused = http.post(f"/uploads/{digest}/complete")
        assert refused.json()["error_code"] == "DATA_LOSS"
        assert http.post("/blobs/missing", json={"digests": [str(digest)]}).json() == {
            "missing": [str(digest)]
        }
        assert http.get(f"/uploads/{digest}").json()["offset"] == 0  # the damaged part is gone
        escaping = http.get("/uploads/blake3:..%2F..%2Fetc%2Fpasswd")
        assert escaping.status_code in (400, 404)


@pytest.mark.slow
def test_a_multi_gib_file_goes_through_a_server_with_the_default_limit(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunks: list[tuple[int, int]],
) -> None:
    server = start_server()  # the default request limit, 256 MiB
    block = os.urandom(1 << 20)
    big = tmp_path / "big.bin"
    with open(big, "wb") as out:
        for i in range(2560):  # 2.5 GiB, every MiB different
            out.write(i.to_bytes(8, "little") + block[8:])
    _use(server.url, monkeypatch)
    try:
        version = data.add(big, "huge")
        assert version.total_size == 2560 << 20
        assert len(chunks) == 40  # 64 MiB each
        assert data.verify("huge@1").ok  # the server rehashed what it stored
    finally:
        api.close()


def test_whole_store_gc_and_verify_are_for_server_administrators(
    thread_server: ThreadServer,
) -> None:
    from loopline.auth.roles import Role

    tokens: dict[str, str] = {}

    def enforce(app: Any) -> Any:
        app.state.auth.enabled = True
        store = app.state.auth.store
        store.create_user("root", None, is_admin=True)
        store.create_user("ed", None)
        store.set_member("default", "ed", Role.EDITOR, actor="root")
        tokens.update(root=store.create_token("root")[0], ed=store.create_token("ed")[0])
        return app

    with thread_server(wrap=enforce) as url:

        def as_(who: str) -> httpx.Client:
            headers = {"authorization": f"Bearer {tokens[who]}"}
            return httpx.Client(base_url=url + API, headers=headers, timeout=60)

        with as_("ed") as editor, as_("root") as root:
            blob = Digest.of_bytes(b"x")
            assert editor.put(f"/blobs/{blob}", content=b"x").status_code == 200
            manifest = data.Manifest("file", [data.Entry("x.txt", 1, blob.hex)])
            editor.put(f"/blobs/{manifest.digest}", content=manifest.to_bytes())
            made = editor.post("/versions", json={"name": "mine", "digest": str(manifest.digest)})
            assert made.status_code == 200, made.text

            for path, body in (("/gc", {"dry_run": True}), ("/verify", {})):
                refused = editor.post(path, json=body)
                assert refused.status_code == 403, refused.text
                assert refused.json()["error_code"] == "PERMISSION_DENIED"
                assert root.post(path, json=body).status_code == 200
            own = editor.post("/verify", json={"ref": "mine@1"}).json()
            assert own["ok"]
            assert own["blobs_checked"] == 2


# -- batches of small blobs ----------------------------------------------------------------------
def _requests(server: ServerProcess, seen: list[str]) -> dict[str, int]:
    """``"METHOD /path status"`` -> how many, from the server's access log (its stdout).

    ``seen`` keeps the lines read so far. A marked ``/health`` call is waited for,
    so every request made before is counted.
    """
    import queue
    import uuid

    marker = uuid.uuid4().hex
    httpx.get(f"{server.url}/health", params={"mark": marker})
    deadline = time.monotonic() + 30
    while not any(marker in line for line in seen[-5:]):
        assert time.monotonic() < deadline, "the access log did not show the marker"
        with contextlib.suppress(queue.Empty):
            seen.append(server.lines.get(timeout=0.5))
    counts: dict[str, int] = {}
    for line in seen:
        if line.count('"') < 2 or "HTTP/1.1" not in line:
            continue
        request, status = line.split('"')[1], line.split('"')[2].split()[0]
        method, path = request.split()[:2]
        key = f"{method} {path.split('?')[0]} {status}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _sum(counts: dict[str, int], prefix: str) -> int:
    return sum(n for key, n in counts.items() if key.startswith(prefix))


def _small_tree(root: Path, count: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(count):
        rel = f"part-{i % 20:02d}/rec-{i:05d}.txt"
        files[rel] = f"record {i}\n".encode() * (1 + i % 97)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[rel])
    return files


def test_thousands_of_small_files_travel_in_batches(
    start_server: Callable[..., ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(access_log=True, log_level="info")
    log: list[str] = []
    _use(server.url, monkeypatch)
    try:
        files = _small_tree(tmp_path / "tree", 3000)
        version = data.add(tmp_path / "tree", "many-small")
        assert version.file_count == 3000
        sent = _requests(server, log)
        # 3,000 files of 10 B to 1 KiB: a few batches; the manifest alone.
        assert 3 <= sent.get("POST /api/v1/data/blobs/batch 200", 0) <= 10, sent
        assert 1 <= _sum(sent, "PUT /api/v1/data/blobs/") <= 2, sent  # manifest (profile)

        data.checkout("many-small@1", tmp_path / "out")
        out = tmp_path / "out"
        assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.txt")} == files
        fetched = _requests(server, log)
        assert 3 <= fetched.get("POST /api/v1/data/blobs/fetch 200", 0) <= 10, fetched
        assert _sum(fetched, "GET /api/v1/data/blobs/") == 1, fetched  # the manifest

        # A second client adding the same tree sends nothing but the questions.
        _use(server.url, monkeypatch)
        monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "other-client"))
        reset_settings()
        assert data.add(tmp_path / "tree", "many-small-copy").digest == version.digest
        again = _requests(server, log)
        assert (
            again.get("POST /api/v1/data/blobs/batch 200")
            == sent["POST /api/v1/data/blobs/batch 200"]
        )
    finally:
        api.close()


def test_batches_split_under_a_small_request_limit(
    small_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[int] = []
    original = DataHttpClient._post_batch

    def counting(self: DataHttpClient, blobs: Any, body: bytes, media: str) -> None:
        original(self, blobs, body, media)
        posted.append(len(body))

    monkeypatch.setattr(DataHttpClient, "_post_batch", counting)
    tree = tmp_path / "tree"
    files = {f"f{i:04d}.bin": os.urandom(20_000) for i in range(300)}  # 6 MB, limit 1 MiB
    tree.mkdir()
    for name, content in files.items():
        (tree / name).write_bytes(content)
    version = data.add(tree, "split")
    assert version.file_count == 300
    assert len(posted) >= 6
    assert max(posted) <= 1 << 20  # every batch that went through fitted the limit
    assert data.get("split@1").path.joinpath("f0123.bin").read_bytes() == files["f0123.bin"]
    with httpx.Client(base_url=small_server + API) as http:  # the limit holds for batches
        refused = http.post("/blobs/batch", content=b"x" * (2 << 20))
        assert refused.status_code == 413


def _frames(*blobs: tuple[str, bytes]) -> bytes:
    from loopline.data.frames import frame_header

    return b"".join(frame_header(d, content) + content for d, content in blobs)


def test_a_corrupt_blob_in_a_batch_is_refused_and_not_stored(client: str) -> None:
    good = os.urandom(5000)
    bad_claim = Digest.of_bytes(b"the content I claim")
    batch = _frames((str(Digest.of_bytes(good)), good), (str(bad_claim), b"other content"))
    with httpx.Client(base_url=client + API) as http:
        refused = http.post("/blobs/batch", content=batch)
        assert refused.status_code == 500
        assert refused.json()["error_code"] == "DATA_LOSS"
        assert str(bad_claim) in refused.json()["message"]
        missing = http.post(
            "/blobs/missing", json={"digests": [str(bad_claim), str(Digest.of_bytes(good))]}
        ).json()["missing"]
        assert missing == [str(bad_claim)]  # the good one was stored, the bad one was not

        torn = http.post("/blobs/batch", content=batch[:-3])  # ends inside a frame
        assert torn.status_code == 400
        too_big = http.post("/blobs/batch", content=f"{bad_claim} {64 << 20}\n".encode())
        assert too_big.status_code == 400

        # A fetch answers frames for the blobs stored, in order, and leaves the rest out.
        fetched = http.post(
            "/blobs/fetch", json={"digests": [str(bad_claim), str(Digest.of_bytes(good))]}
        )
        assert fetched.content == _frames((str(Digest.of_bytes(good)), good))

    sdk = DataHttpClient(client)
    try:
        with pytest.raises(loopline.errors.IntegrityError):
            sdk.put_batch([(bad_claim, b"x"), (Digest.of_bytes(b"y"), b"y")])
    finally:
        sdk.close()


def test_batches_need_the_same_permissions_as_single_blobs(thread_server: ThreadServer) -> None:
    from loopline.auth.roles import Role

    tokens: dict[str, str] = {}

    def enforce(app: Any) -> Any:
        app.state.auth.enabled = True
        store = app.state.auth.store
        for name, role in (("ed", Role.EDITOR), ("vi", Role.VIEWER)):
            store.create_user(name, None)
            store.set_member("default", name, role, actor="system")
            tokens[name] = store.create_token(name)[0]
        return app

    blob = os.urandom(100)
    digest = Digest.of_bytes(blob)
    body = _frames((str(digest), blob), (str(Digest.of_bytes(b"z")), b"z"))
    with thread_server(wrap=enforce) as url:
        with httpx.Client(base_url=url + API) as anonymous:
            assert anonymous.post("/blobs/batch", content=body).status_code == 401
            assert (
                anonymous.post("/blobs/fetch", json={"digests": [str(digest)]}).status_code == 401
            )
        headers = {"authorization": f"Bearer {tokens['vi']}"}
        with httpx.Client(base_url=url + API, headers=headers) as viewer:
            assert viewer.post("/blobs/batch", content=body).status_code == 403
        editor = DataHttpClient(url, token=tokens["ed"])
        viewer_sdk = DataHttpClient(url, token=tokens["vi"])
        try:
            editor.put_batch([(digest, blob), (Digest.of_bytes(b"z"), b"z")])
            assert editor.get_batch([digest]) == {digest: blob}
            # Reading a batch back is a read: viewers may, as they may GET one blob.
            assert viewer_sdk.get_batch([digest]) == {digest: blob}
            assert viewer_sdk.missing([str(digest), str(Digest.of_bytes(b"never"))]) == {
                str(Digest.of_bytes(b"never"))
            }
        finally:
            editor.close()
            viewer_sdk.close()


def test_a_server_without_batches_gets_one_request_per_blob(
    thread_server: ThreadServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def older(app: Any) -> Any:
        """The server as it was before the batch routes: POST there answers 405."""
        from starlette.responses import JSONResponse

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].endswith(("/blobs/batch", "/blobs/fetch")):
                refused = JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
                await refused(scope, receive, send)
                return
            await app(scope, receive, send)

        return asgi

    singles: list[str] = []
    original = DataHttpClient.put_blob

    def counting(self: DataHttpClient, digest: Digest, source: Path | bytes) -> None:
        singles.append(str(digest))
        original(self, digest, source)

    monkeypatch.setattr(DataHttpClient, "put_blob", counting)
    with thread_server(wrap=older) as url:
        _use(url, monkeypatch)
        try:
            files = _small_tree(tmp_path / "tree", 120)
            version = data.add(tmp_path / "tree", "old-server")
            assert len(singles) >= 121  # every file, then the manifest
            data.checkout("old-server@1", tmp_path / "out")
            out = tmp_path / "out"
            assert {
                p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.txt")
            } == files
            assert version.file_count == 120
        finally:
            api.close()

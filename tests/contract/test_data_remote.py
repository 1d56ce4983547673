"""``push`` and ``pull`` against every kind of remote: a folder, and S3 (moto's server mode).

Two independent stores (two LOOPLINE_HOMEs) exchange versions through the remote:
push from A, pull into an empty B, check out, compare bytes.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from loopline.cli.data import app
from loopline.config import get_settings
from loopline.data.add import add
from loopline.data.checkout import checkout
from loopline.data.service import DataService
from loopline.data.transfer import RECORDS_PREFIX, pull, push, remote_versions
from loopline.errors import IntegrityError, InvalidStateError, NotFoundError
from loopline.store.blobs import BlobStore, open_blob_store
from loopline.store.digest import ALGO, Digest
from loopline.testing.s3 import MotoServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LARGE = (1 << 20) + 4097  # above the small-file limit: streamed through a temp file on pull


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(params=["dir", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "dir":
        return str(tmp_path / "remote")
    server: MotoServer = request.getfixturevalue("moto_server")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{server.create_bucket()}/team/remote"


def _service(home: Path) -> DataService:
    return DataService(get_settings().with_(home=home, tracking_uri=None, artifacts_uri=None))


@pytest.fixture
def store_a(tmp_path: Path) -> Iterator[DataService]:
    svc = _service(tmp_path / "home-a")
    yield svc
    svc.close()


@pytest.fixture
def store_b(tmp_path: Path) -> Iterator[DataService]:
    svc = _service(tmp_path / "home-b")
    yield svc
    svc.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """100 small files (stored in packs locally), one large file, a CSV, an executable."""
    root = tmp_path / "tree"
    (root / "many").mkdir(parents=True)
    for i in range(100):
        (root / "many" / f"f{i:03}.txt").write_text(f"file {i}\n" * (i + 1))
    (root / "big.bin").write_bytes(os.urandom(LARGE))
    (root / "table.csv").write_text("x,label\n1,a\n2,b\n3,a\n")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return root


def _contents(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), os.access(p, os.X_OK))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _corrupt(store: BlobStore, hexdigest: str) -> None:
    digest = Digest(ALGO, hexdigest)
    object_path = getattr(store, "object_path", None)
    if object_path is not None:
        path = object_path(digest)
        path.chmod(0o644)
        path.write_bytes(b"not what was stored" + path.read_bytes()[19:])
    else:
        store.client.put_object(
            Bucket=store.bucket,
            Key=store.object_key(digest),
            Body=b"not what was stored",
        )


def test_push_then_pull_into_an_empty_store(
    store_a: DataService, store_b: DataService, tree: Path, remote: str, tmp_path: Path
) -> None:
    add(store_a, tree, "shared", message="first")
    (tree / "table.csv").write_text("x,label\n1,a\n2,b\n3,a\n4,b\n")
    v2 = add(store_a, tree, "shared", message="second", tags=["prod"])
    assert store_a.blobs.list_files("data/packs"), "the small files should be packed locally"

    pushed = push(store_a, "shared@prod", remote)
    # 100 small files, big.bin, table.csv, run.sh + manifest + profile
    assert (pushed.objects, pushed.moved, pushed.recorded) == (105, 105, True)
    assert pushed.bytes_moved > LARGE
    assert [r["version"] for r in remote_versions(remote, "shared")] == [2]

    pulled = pull(store_b, "shared", remote)
    assert (pulled.ref, pulled.moved, pulled.recorded) == ("shared@2", 105, True)
    got = store_b.resolve("shared@2")
    assert (got.version, got.digest, got.message) == (2, v2.digest, "second")
    assert got.schema == v2.schema
    assert got.profile() == v2.profile()
    checkout(store_b, "shared@2", tmp_path / "out")
    assert _contents(tmp_path / "out") == _contents(tree)

    # Later versions continue after the pulled number; a re-pull moves nothing.
    assert pull(store_b, "shared@2", remote).moved == 0
    (tree / "extra.txt").write_text("more")
    assert add(store_b, tree, "shared").version == 3


def test_a_second_push_moves_nothing_and_an_interrupted_one_resumes(
    store_a: DataService, tree: Path, remote: str
) -> None:
    add(store_a, tree, "again")
    assert push(store_a, "again", remote).moved == 105
    second = push(store_a, "again@1", remote)
    assert (second.moved, second.skipped, second.bytes_moved, second.recorded) == (0, 105, 0, False)

    # An interrupted push: some blobs and the record never arrived.
    target = open_blob_store(remote)
    manifest = store_a.resolve("again@1").manifest
    lost = sorted(manifest.digests())[:7]
    for hexdigest in lost:
        target.delete(Digest(ALGO, hexdigest))
    target.delete_file(f"{RECORDS_PREFIX}again/1.json")
    resumed = push(store_a, "again", remote)
    assert (resumed.moved, resumed.recorded) == (7, True)
    assert not target.missing(Digest(ALGO, h) for h in manifest.digests())


@pytest.mark.parametrize("which", ["small", "large"])
def test_a_corrupt_remote_blob_fails_the_pull_and_stores_nothing_for_it(
    store_a: DataService, store_b: DataService, tree: Path, remote: str, which: str
) -> None:
    version = add(store_a, tree, "fragile")
    push(store_a, "fragile", remote)
    entry = version.manifest.by_path["big.bin" if which == "large" else "many/f042.txt"]
    _corrupt(open_blob_store(remote), entry.digest)

    with pytest.raises(IntegrityError) as caught:
        pull(store_b, "fragile@1", remote)
    assert entry.path in str(caught.value)
    assert entry.digest in str(caught.value)
    assert store_b.blobs.missing([entry.blob]) == {entry.blob}
    assert store_b.blobs.missing([version.digest]) == {version.digest}, "no manifest either"
    with pytest.raises(NotFoundError):
        store_b.resolve("fragile@1")


def test_pull_refs_numbers_and_conflicts(
    store_a: DataService, store_b: DataService, tmp_path: Path, remote: str
) -> None:
    data = tmp_path / "one.txt"
    for i in range(3):
        data.write_text(f"content {i}")
        add(store_a, data, "numbers", tags=["first"] if i == 0 else ())
        push(store_a, f"numbers@{i + 1}", remote)
    v3 = store_a.resolve("numbers@3")
    assert pull(store_b, f"numbers@sha:{v3.digest.hex[:10]}", remote).ref == "numbers@3"
    assert pull(store_b, "numbers@first", remote).ref == "numbers@1"
    assert [v.version for v in (store_b.resolve("numbers@1"), store_b.resolve("numbers@3"))] == [
        1,
        3,
    ]
    with pytest.raises(NotFoundError, match="no numbers@7"):
        pull(store_b, "numbers@7", remote)
    with pytest.raises(NotFoundError, match="no version of dataset 'absent'"):
        pull(store_b, "absent", remote)

    # The same number with another content: the stores diverged, nothing is overwritten.
    data.write_text("something else")
    other = _service(tmp_path / "home-c")
    try:
        add(other, data, "numbers")
        with pytest.raises(InvalidStateError, match="numbers@1 exists here with another content"):
            pull(other, "numbers@1", remote)
    finally:
        other.close()


def test_the_cli_pushes_and_pulls(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = str(tmp_path / "remote")
    runner = CliRunner()
    add_result = runner.invoke(app, ["add", str(tree), "--name", "cli-set"])
    assert add_result.exit_code == 0, add_result.output
    first = runner.invoke(app, ["push", "cli-set", "--remote", remote])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"cli-set@1 -> {remote}: 105 objects moved")
    again = runner.invoke(app, ["push", "cli-set@1", "-r", remote, "--json"])
    assert json.loads(again.stdout)["moved"] == 0

    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "elsewhere"))
    from loopline.config import reset_settings

    reset_settings()
    pulled = runner.invoke(app, ["pull", "cli-set@latest", "--remote", remote])
    assert pulled.exit_code == 0, pulled.output
    assert pulled.stdout.startswith(f"cli-set@1 <- {remote}: 105 objects moved")
    missing = runner.invoke(app, ["pull", "nope", "--remote", remote])
    assert missing.exit_code != 0
    assert "holds no version of dataset 'nope'" in missing.output

"""The blob store contract, as checks any implementation can run.

Each ``check_*`` function takes a :class:`BlobStoreCase`: the store under test, a
scratch folder, and a hook that corrupts one stored blob behind the store's back
(each backend knows how: the local store rewrites the read-only file, an S3 store
would overwrite the object). ``test_blob_store_contract`` runs every check against
every backend of the ``blob_store`` fixture; add a backend by adding a param there.
Checks that need to break a backend's internals (a crash in the middle of a write)
follow, per backend.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from loopline.errors import IntegrityError, NotFoundError, UnsafePathError
from loopline.store.blobs import BlobStore, open_blob_store
from loopline.store.blobs import local as local_module
from loopline.store.blobs.local import LocalBlobStore
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

UNSAFE_KEYS = ["../up.txt", "a/../../up.txt", "/abs.txt", "nul\x00.txt", ""]


@dataclass
class BlobStoreCase:
    store: BlobStore
    scratch: Path
    corrupt: Callable[[Digest], str]
    """Change a stored blob's bytes; returns where it lives, as errors should name it."""


# -- the checks -----------------------------------------------------------------------
def check_put_bytes_dedupes(case: BlobStoreCase) -> None:
    store = case.store
    first = store.put_bytes(b"hello")
    again = store.put_bytes(b"hello")
    assert first == again == Digest.of_bytes(b"hello")
    assert list(store.iter_digests()) == [first]
    assert store.exists(first)
    assert store.size(first) == 5
    assert store.get_bytes(first) == b"hello"
    with store.open(first) as fh:
        assert fh.read() == b"hello"


def check_put_file_dedupes_with_bytes(case: BlobStoreCase) -> None:
    store = case.store
    src = case.scratch / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    digest = store.put_file(src)
    assert digest == Digest.of_bytes(data)
    assert store.put_bytes(data) == digest
    assert store.put_file(src, digest=digest) == digest  # known digest: no re-hash
    assert list(store.iter_digests()) == [digest]
    assert store.size(digest) == len(data)
    assert store.get_bytes(digest) == data


def check_empty_blob(case: BlobStoreCase) -> None:
    digest = case.store.put_bytes(b"")
    assert case.store.get_bytes(digest) == b""
    assert case.store.size(digest) == 0
    dest = case.scratch / "empty"
    case.store.get_file(digest, dest)
    assert dest.read_bytes() == b""


def check_put_file_refuses_a_wrong_digest(case: BlobStoreCase) -> None:
    src = case.scratch / "f.txt"
    src.write_bytes(b"actual content")
    claimed = Digest.of_bytes(b"something else")
    with pytest.raises(IntegrityError, match=str(claimed)):
        case.store.put_file(src, digest=claimed)
    assert list(case.store.iter_digests()) == []


def check_get_file_materialises(case: BlobStoreCase) -> None:
    digest = case.store.put_bytes(b"payload")
    dest = case.scratch / "deep" / "er" / "out.bin"
    case.store.get_file(digest, dest)
    assert dest.read_bytes() == b"payload"
    dest.write_bytes(b"old")  # replaced, not appended to
    case.store.get_file(digest, dest)
    assert dest.read_bytes() == b"payload"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.bin"]  # no temp left


def check_corrupt_blob_is_detected(case: BlobStoreCase) -> None:
    store = case.store
    digest = store.put_bytes(b"precious model weights")
    where = case.corrupt(digest)
    dest = case.scratch / "restored.bin"
    with pytest.raises(IntegrityError) as caught:
        store.get_file(digest, dest)
    message = str(caught.value)
    assert str(digest) in message
    assert where in message
    assert caught.value.code == "DATA_LOSS"
    assert not dest.exists()
    assert list(case.scratch.iterdir()) == []  # no temp file left beside dest
    with pytest.raises(IntegrityError, match=str(digest)):
        store.get_bytes(digest)
    assert store.get_bytes(digest, verify=False) != b"precious model weights"


def check_missing_blob_is_not_found(case: BlobStoreCase) -> None:
    store = case.store
    ghost = Digest.of_bytes(b"never stored")
    assert not store.exists(ghost)
    assert store.missing([ghost, store.put_bytes(b"here")]) == {ghost}
    with pytest.raises(NotFoundError, match=str(ghost)):
        store.get_bytes(ghost)
    with pytest.raises(NotFoundError):
        store.get_file(ghost, case.scratch / "x")
    with pytest.raises(NotFoundError):
        store.size(ghost)
    with pytest.raises(NotFoundError):
        store.open(ghost)
    assert not (case.scratch / "x").exists()
    store.delete(ghost)  # deleting what is not there is fine


def check_iter_and_delete(case: BlobStoreCase) -> None:
    store = case.store
    digests = {store.put_bytes(f"blob {i}".encode()) for i in range(20)}
    assert set(store.iter_digests()) == digests
    victim = sorted(digests)[0]
    store.delete(victim)
    assert not store.exists(victim)
    assert set(store.iter_digests()) == digests - {victim}
    assert store.put_bytes(b"blob 0") in digests  # can be stored again


def check_files_area(case: BlobStoreCase) -> None:
    store = case.store
    store.write_file("logs/run1/part-0001.jsonl", b"one\n")
    store.write_file("logs/run1/part-0002.jsonl", b"two\n")
    store.write_file("logs/run2/part-0001.jsonl", b"x")
    store.write_file("top.txt", b"top")
    store.write_file("logs/run1/part-0001.jsonl", b"ONE\n")  # replaced
    assert store.read_file("logs/run1/part-0001.jsonl") == b"ONE\n"
    assert store.read_file("./logs//run2/part-0001.jsonl") == b"x"  # normalised key
    assert store.list_files("logs/run1") == [
        "logs/run1/part-0001.jsonl",
        "logs/run1/part-0002.jsonl",
    ]
    assert store.list_files("top.txt") == ["top.txt"]
    assert len(store.list_files()) == 4
    assert store.list_files("nothing") == []
    with pytest.raises(NotFoundError):
        store.read_file("logs/run1/missing")
    store.delete_file("logs/run1/part-0002.jsonl")
    store.delete_file("logs/run1/never-there")
    assert store.list_files("logs/run1") == ["logs/run1/part-0001.jsonl"]
    store.delete_file("logs")
    assert store.list_files() == ["top.txt"]
    assert list(store.iter_digests()) == []  # the two areas do not mix


def check_files_area_refuses_traversal(case: BlobStoreCase) -> None:
    store = case.store
    outside = case.scratch / "up.txt"
    for key in UNSAFE_KEYS:
        with pytest.raises(UnsafePathError):
            store.write_file(key, b"x")
        with pytest.raises(UnsafePathError):
            store.read_file(key)
        with pytest.raises(UnsafePathError):
            store.delete_file(key)
        if key:  # an empty prefix lists everything
            with pytest.raises(UnsafePathError):
                store.list_files(key)
    assert not outside.exists()
    assert store.list_files() == []


CHECKS = [
    check_put_bytes_dedupes,
    check_put_file_dedupes_with_bytes,
    check_empty_blob,
    check_put_file_refuses_a_wrong_digest,
    check_get_file_materialises,
    check_corrupt_blob_is_detected,
    check_missing_blob_is_not_found,
    check_iter_and_delete,
    check_files_area,
    check_files_area_refuses_traversal,
]


# -- backends -------------------------------------------------------------------------
def _local_case(tmp_path: Path) -> BlobStoreCase:
    store = LocalBlobStore(tmp_path / "store")

    def corrupt(digest: Digest) -> str:
        path = store.object_path(digest)
        path.chmod(stat.S_IWUSR | stat.S_IRUSR)
        path.write_bytes(b"bit rot")
        return str(path)

    return BlobStoreCase(store, tmp_path / "scratch", corrupt)


BACKENDS: dict[str, Callable[[Path], BlobStoreCase]] = {"local": _local_case}


@pytest.fixture(params=sorted(BACKENDS))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStoreCase]:
    case = BACKENDS[request.param](tmp_path)
    case.scratch.mkdir()
    yield case
    case.store.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_blob_store_contract(blob_store: BlobStoreCase, check: Callable[..., None]) -> None:
    check(blob_store)


# -- the local store's own guarantees -----------------------------------------------------
def test_open_blob_store_picks_local_for_paths(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path / "a")), LocalBlobStore)
    store = open_blob_store(f"file://{tmp_path / 'b'}")
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "b"


def test_local_blobs_are_sharded_and_read_only(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put_bytes(b"abc")
    path = store.object_path(digest)
    assert path == tmp_path / "objects" / digest.hex[:2] / digest.hex[2:]
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


class _Crash(Exception):
    pass


def _crashing_hasher(monkeypatch: pytest.MonkeyPatch, after_chunks: int) -> None:
    real = local_module.Hasher

    class Crashing:
        def __init__(self) -> None:
            self.inner, self.chunks = real(), 0

        def update(self, data: bytes) -> None:
            self.chunks += 1
            if self.chunks > after_chunks:
                raise _Crash("disk pulled out mid-write")
            self.inner.update(data)

        def hexdigest(self) -> str:
            return str(self.inner.hexdigest())

    monkeypatch.setattr(local_module, "Hasher", Crashing)
    monkeypatch.setattr(local_module, "CHUNK", 1024)


def test_a_crash_mid_write_leaves_no_partial_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(10 * 1024))
    _crashing_hasher(monkeypatch, after_chunks=3)
    with pytest.raises(_Crash):
        store.put_file(src)
    assert list(store.iter_digests()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    assert not store.exists(Digest.of_bytes(src.read_bytes()))
    monkeypatch.undo()
    assert store.get_bytes(store.put_file(src)) == src.read_bytes()


def test_a_failed_verified_download_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "store")
    digest = store.put_bytes(os.urandom(10 * 1024))
    dest = tmp_path / "out" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous version")
    _crashing_hasher(monkeypatch, after_chunks=2)
    with pytest.raises(_Crash):
        store.get_file(digest, dest)
    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]


def test_stray_files_in_the_objects_folder_are_skipped(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put_bytes(b"real")
    (tmp_path / "objects" / digest.hex[:2] / "not-a-digest.tmp").write_bytes(b"x")
    (tmp_path / "objects" / "README").write_bytes(b"x")
    (tmp_path / "objects" / "zz").mkdir()
    assert list(store.iter_digests()) == [digest]

"""The S3 blob store against a real S3-compatible endpoint.

moto's server runs in a subprocess for the whole session (``moto_server``); every test
gets a fresh bucket. The blob store contract of ``test_blobs.py`` runs twice: with the
default transfer settings, and with a 1-byte multipart threshold so the same checks also
go through the managed (parallel) transfer path of large blobs. The S3 store's own
guarantees follow.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_blobs import CHECKS, BlobStoreCase

from loopline.errors import (
    IntegrityError,
    InvalidArgumentError,
    MissingDependencyError,
    NotFoundError,
    StoreError,
    UnauthenticatedError,
    UnsafePathError,
)
from loopline.store.blobs import open_blob_store
from loopline.store.blobs import s3 as s3_module
from loopline.store.blobs.s3 import S3BlobStore, parse_s3_uri
from loopline.store.digest import Digest
from loopline.testing.s3 import MotoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MiB = 1024 * 1024
SMALL_PARTS = {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the environment points boto3 and loopline at moto, nowhere else."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server.create_bucket()


def _store(bucket: str, **options: Any) -> S3BlobStore:
    return S3BlobStore(f"s3://{bucket}/team/blobs", **options)


def _count_calls(store: S3BlobStore) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    return calls


# -- the shared contract --------------------------------------------------------------------
# "direct": small blobs go up with one PutObject and down with one GetObject.
# "managed": every non-empty blob goes through boto3's transfer manager (the path of
# large blobs: re-hashed upload, ranged download hashed from the file).
TRANSFERS = {"direct": {}, "managed": {"multipart_threshold": 1}}


@pytest.fixture(params=sorted(TRANSFERS))
def s3_case(
    request: pytest.FixtureRequest, moto_server: MotoServer, bucket: str, tmp_path: Path
) -> Iterator[BlobStoreCase]:
    store = _store(bucket, **TRANSFERS[request.param])

    def corrupt(digest: Digest) -> str:
        moto_server.client().put_object(
            Bucket=bucket, Key=store.object_key(digest), Body=b"bit rot"
        )
        return store.object_url(digest)

    case = BlobStoreCase(store, tmp_path / "scratch", corrupt)
    case.scratch.mkdir()
    yield case
    store.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_s3_blob_store_contract(s3_case: BlobStoreCase, check: Callable[..., None]) -> None:
    check(s3_case)


# -- layout, URIs and configuration ------------------------------------------------------
def test_layout_matches_the_local_store(bucket: str, moto_server: MotoServer) -> None:
    store = _store(bucket)
    digest = store.put_bytes(b"abc")
    store.write_file("logs/a.txt", b"x")
    listing = moto_server.client().list_objects_v2(Bucket=bucket)
    keys = sorted(obj["Key"] for obj in listing["Contents"])
    assert keys == [
        "team/blobs/files/logs/a.txt",
        f"team/blobs/objects/{digest.hex[:2]}/{digest.hex[2:]}",
    ]


def test_open_blob_store_picks_s3(bucket: str) -> None:
    store = open_blob_store(f"s3://{bucket}/prefix/")
    assert isinstance(store, S3BlobStore)
    assert (store.uri, store.bucket, store.prefix) == (f"s3://{bucket}/prefix", bucket, "prefix")
    assert store.endpoint_url == os.environ["LOOPLINE_S3_ENDPOINT_URL"]
    assert store.get_bytes(store.put_bytes(b"via the factory")) == b"via the factory"


def test_aws_endpoint_url_alone_is_honoured(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_S3_ENDPOINT_URL")
    store = S3BlobStore(f"s3://{bucket}")
    assert store.endpoint_url is None  # boto3 resolves AWS_ENDPOINT_URL itself
    assert store.get_bytes(store.put_bytes(b"x")) == b"x"


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("s3://", InvalidArgumentError),
        ("s3:///prefix", InvalidArgumentError),
        ("gs://bucket/x", InvalidArgumentError),
        ("s3://bucket/a?region=x", InvalidArgumentError),
        ("s3://bucket/../escape", UnsafePathError),
    ],
)
def test_bad_uris_are_refused(uri: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_s3_uri(uri)


def test_a_missing_bucket_is_named(moto_server: MotoServer, bucket: str) -> None:
    store = S3BlobStore("s3://no-such-bucket-here/x")
    with pytest.raises(NotFoundError, match="no-such-bucket-here"):
        store.put_bytes(b"x")


def test_an_unreachable_endpoint_is_a_store_error() -> None:
    import boto3
    from botocore.config import Config

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    store = S3BlobStore("s3://bucket/p", client=client)
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}") as caught:
        store.put_bytes(b"x")
    assert "check the endpoint" in str(caught.value)
    store.close()


def test_no_credentials_is_a_clear_error(
    moto_server: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UnauthenticatedError, match="credentials") as caught:
        S3BlobStore(f"s3://{bucket}").put_bytes(b"x")
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependencyError) as caught:
        S3BlobStore("s3://bucket/x")
    assert "pip install 'loopline[s3]'" in str(caught.value)


def test_importing_the_blob_stores_does_not_import_boto3() -> None:
    code = (
        "import sys, loopline.store.blobs, loopline.store.blobs.s3, loopline.testing.s3\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 'moto', 's3transfer') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_store_survives_pickling(bucket: str) -> None:
    store = _store(bucket)
    digest = store.put_bytes(b"shipped to a worker")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get_bytes(digest) == b"shipped to a worker"
    assert clone.client is not store.client


# -- large objects ------------------------------------------------------------------------------
def test_large_file_round_trip_in_parts(
    bucket: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    store = _store(bucket, **SMALL_PARTS)
    src = tmp_path / "model.bin"
    data = os.urandom(20 * 1000 * 1000)
    src.write_bytes(data)
    digest = store.put_file(src)
    assert digest == Digest.of_bytes(data)
    head = moto_server.client().head_object(Bucket=bucket, Key=store.object_key(digest))
    assert head["ETag"].endswith('-4"')  # four parts of 5 MiB or less
    assert store.size(digest) == len(data)
    dest = tmp_path / "out" / "model.bin"
    store.get_file(digest, dest)  # parallel ranged download, then verified
    assert dest.read_bytes() == data
    assert store.get_bytes(digest) == data
    calls = _count_calls(store)
    assert store.put_file(src) == digest
    assert calls == ["HeadObject"]  # hashed, found, not sent again


def test_a_corrupt_large_blob_is_not_materialised(
    bucket: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    store = _store(bucket, **SMALL_PARTS)
    digest = store.put_bytes(os.urandom(6 * MiB))
    moto_server.client().put_object(
        Bucket=bucket, Key=store.object_key(digest), Body=os.urandom(6 * MiB)
    )
    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(IntegrityError) as caught:
        store.get_file(digest, dest)
    assert str(digest) in str(caught.value)
    assert store.object_url(digest) in str(caught.value)
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("size", [10 * MiB, 10 * MiB + 1], ids=["whole-parts", "short-last-part"])
def test_a_file_changed_after_hashing_is_never_stored(
    bucket: str,
    moto_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    """The upload re-hashes what it sends and fails before the object is completed."""
    store = _store(bucket, **SMALL_PARTS)
    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(size))
    stale = Digest.of_bytes(b"what the file held when it was hashed")
    monkeypatch.setattr(s3_module, "_hash_file", lambda path: stale)
    with pytest.raises(IntegrityError, match="changed while it was being stored"):
        store.put_file(src)
    assert list(store.iter_digests()) == []
    uploads = moto_server.client().list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []  # aborted, not left to accrue


# -- many objects -------------------------------------------------------------------------
def test_missing_answers_2000_digests_in_bulk(bucket: str, tmp_path: Path) -> None:
    store = _store(bucket)
    files = []
    for i in range(100):
        path = tmp_path / f"f{i}"
        path.write_bytes(f"stored {i}".encode())
        files.append((path, None))
    stored = set(store.put_many(files))
    absent = {Digest.of_bytes(f"absent {i}".encode()) for i in range(1900)}
    calls = _count_calls(store)
    assert store.missing(stored | absent) == absent
    assert len(calls) <= 256 + 64  # about one listing per shard, not 2,000 HEADs


def _same_shard(count: int, shard: str = "ab") -> list[bytes]:
    found: list[bytes] = []
    i = 0
    while len(found) < count:
        data = f"blob {i}".encode()
        if Digest.of_bytes(data).hex.startswith(shard):
            found.append(data)
        i += 1
    return found


def test_missing_pages_through_a_crowded_shard(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "_LIST_PAGE", 4)
    store = _store(bucket)
    contents = _same_shard(60)
    stored = {store.put_bytes(data) for data in contents[:40]}
    not_stored = {Digest.of_bytes(data) for data in contents[40:]}
    assert store.missing(stored | not_stored) == not_stored
    some = set(sorted(stored | not_stored)[::7])  # few wanted among many listed
    calls = _count_calls(store)
    assert store.missing(some) == some & not_stored
    assert len(calls) <= 2 * len(some)
    assert store.missing([]) == set()


def test_put_many_and_get_many(bucket: str, tmp_path: Path) -> None:
    store = _store(bucket)
    src = tmp_path / "src"
    src.mkdir()
    payloads = {f"part-{i:03d}.bin": os.urandom(100 + i) for i in range(60)}
    for name, data in payloads.items():
        (src / name).write_bytes(data)
    already = store.put_bytes(payloads["part-000.bin"])
    items: list[tuple[Path, Digest | None]] = [(src / name, None) for name in payloads]
    items[0] = (tmp_path / "gone.bin", already)  # known and stored: not even opened
    done: list[Path] = []
    digests = store.put_many(items, progress=lambda path, digest: done.append(path))
    assert digests == [Digest.of_bytes(data) for data in payloads.values()]
    assert len(done) == len(items)
    out = tmp_path / "out"
    store.get_many([(d, out / name) for d, name in zip(digests, payloads, strict=True)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == payloads
    ghost = Digest.of_bytes(b"never stored")
    with pytest.raises(NotFoundError, match=str(ghost)):
        store.get_many([(digests[1], out / "again.bin"), (ghost, out / "ghost.bin")])
    assert not (out / "ghost.bin").exists()


def test_iter_objects_gives_sizes_and_ages_for_gc(bucket: str, tmp_path: Path) -> None:
    from loopline.store.gc import collect
    from loopline.store.metadata import Database

    store = _store(bucket)
    digest = store.put_bytes(b"nobody needs me")
    before = int(time.time() * 1000)
    [info] = list(store.iter_objects())
    assert (info.digest, info.size) == (digest, 15)
    assert info.modified_at is not None
    assert abs(info.modified_at - before) < 60_000
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    assert collect(db, store, dry_run=False).blobs_young == 1
    report = collect(db, store, dry_run=False, grace_ms=0)
    assert (report.blobs_deleted, report.bytes_freed) == (1, 15)
    assert not store.exists(digest)


# -- the test endpoint itself ------------------------------------------------------------------
def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in {"Z", "X"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_endpoint_dies_with_a_killed_parent(tmp_path: Path) -> None:
    code = (
        "import time\n"
        "from loopline.testing.s3 import MotoServer\n"
        "s = MotoServer(); s.start(); print(s._process.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 10
    while not _gone(child):
        assert time.monotonic() < deadline, f"moto server {child} outlived its parent"
        time.sleep(0.05)

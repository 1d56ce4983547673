"""``push`` and ``pull``: copy a dataset version to or from a remote blob store.

A remote is any blob store URI (a folder, ``file://PATH``, ``s3://BUCKET/PREFIX``).
It holds, for every pushed version:

* the manifest blob, each file's blob (one blob per file: a remote serves a pull of
  one version alone, without the local store's packs) and the profile blob;
* a version record in its plain-path area, ``data/datasets/<name>/<version>.json``:
  digest, kind, counts, message, schema, so a pull into an empty store recreates the
  version with the same number and digest.

Only missing objects move (one bulk :meth:`~loopline.store.blobs.BlobStore.missing`
call per side), on a few threads. The record is written after every blob, and a
pulled version is recorded after every blob is stored here, so an interrupted
transfer leaves at most blobs that the next run skips: it resumes.

Every blob is verified against its digest on the way, in both directions: a corrupt
blob raises :class:`~loopline.errors.IntegrityError` naming the file's path and
digest, and is never stored.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from loopline.data._fs import SMALL, hash_bytes
from loopline.data._pool import Pool, interrupts_deferred
from loopline.data.entities import TransferResult
from loopline.data.manifest import Manifest
from loopline.data.packs import PACK_MAX_FILE, PackIndex, read_packed
from loopline.data.progress import NoProgress
from loopline.data.refs import parse_ref
from loopline.data.rows import NewVersion
from loopline.errors import IntegrityError, LooplineError, NotFoundError
from loopline.store.digest import ALGO, Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from loopline.data.progress import Progress
    from loopline.data.refs import Ref
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore

__all__ = ["RECORDS_PREFIX", "RECORD_FORMAT", "open_remote", "pull", "push", "remote_versions"]

RECORDS_PREFIX = "data/datasets/"
RECORD_FORMAT = "loopline.dataset-version/1"
WORKERS = 16
"""Transfer threads: remote stores answer slowly and in parallel."""


def open_remote(remote: str | BlobStore) -> BlobStore:
    from loopline.store.blobs import BlobStore, open_blob_store

    return remote if isinstance(remote, BlobStore) else open_blob_store(remote)


def _corrupt(what: str, digest: str, where: str) -> IntegrityError:
    return IntegrityError(
        f"blob {ALGO}:{digest} of {what} in {where} is corrupt: its content does not match "
        "its digest; it was not copied",
        hint="run `loopline data verify` on the store that holds it, then push the version again",
    )


# -- push --------------------------------------------------------------------------------------
def push(
    service: DataService,
    ref: str | DatasetVersion,
    remote: str | BlobStore,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Copy version ``ref`` to ``remote`` (see :func:`loopline.data.push`)."""
    version = service.resolve(ref)
    manifest = version.manifest
    target = open_remote(remote)
    # digest -> (size, a name for messages); the manifest and profile are blobs like files.
    wanted: dict[str, tuple[int, str]] = {}
    for e in manifest.entries:
        wanted.setdefault(e.digest, (e.size, e.path))
    wanted[version.digest.hex] = (len(manifest.to_bytes()), f"the manifest of {version.ref}")
    if version.profile_digest is not None:
        wanted[version.profile_digest.hex] = (0, f"the profile of {version.ref}")
    absent = sorted(d.hex for d in target.missing(Digest(ALGO, h) for h in wanted))
    packs = (
        PackIndex.load(service.blobs)
        if any(wanted[h][0] <= PACK_MAX_FILE for h in absent)
        else None
    )

    def send(hexdigest: str) -> int:
        size, what = wanted[hexdigest]
        source = _local_source(service.blobs, packs, hexdigest, size, what)
        if isinstance(source, bytes):
            stored = target.put_bytes(source)
            moved = len(source)
        else:
            stored = target.put_file(source)
            moved = size
        if stored.hex != hexdigest:  # the local blob changed under its name
            with contextlib.suppress(LooplineError):
                target.delete(stored)
            raise _corrupt(what, hexdigest, service.blobs.uri)
        return moved

    moved = run_transfers(absent, wanted, send, workers, progress)
    key = f"{RECORDS_PREFIX}{version.name}/{version.version}.json"
    record = _record(version)
    try:
        recorded = orjson.loads(target.read_file(key)) != orjson.loads(record)
    except NotFoundError:
        recorded = True
    if recorded:
        with interrupts_deferred():
            target.write_file(key, record)
    return TransferResult(
        "push", version.ref, target.uri, len(wanted), len(absent), moved, recorded
    )


def _record(version: DatasetVersion) -> bytes:
    return orjson.dumps(
        {
            "format": RECORD_FORMAT,
            "name": version.name,
            "version": version.version,
            "digest": str(version.digest),
            "kind": version.kind,
            "file_count": version.file_count,
            "total_size": version.total_size,
            "message": version.message,
            "source": version.source,
            "created_at": version.created_at,
            "created_by": version.created_by,
            "schema_json": version.row.schema_json,
            "profile_digest": None
            if version.profile_digest is None
            else str(version.profile_digest),
            "tags": version.tags,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def _local_source(
    blobs: BlobStore, packs: PackIndex | None, hexdigest: str, size: int, what: str
) -> bytes | Path:
    """A local blob's content: verified bytes, or the path of a large local blob (hashed on upload)."""
    where = packs.locate(hexdigest) if packs is not None else None
    if where is not None:
        with contextlib.suppress(NotFoundError):  # the pack is gone: the file may be a blob too
            data = read_packed(blobs, *where)
            if hash_bytes(data) != hexdigest:
                raise _corrupt(what, hexdigest, f"pack {ALGO}:{where[0]} of {blobs.uri}")
            return data
    object_path = getattr(blobs, "object_path", None)
    if object_path is not None and size > SMALL:
        path: Path = object_path(Digest(ALGO, hexdigest))
        if not path.exists():
            raise NotFoundError(
                f"blob {ALGO}:{hexdigest} of {what} is missing from {blobs.uri}",
                hint="run `loopline data verify` to list every missing blob",
            )
        return path
    try:
        return blobs.get_bytes(Digest(ALGO, hexdigest), verify=True)
    except IntegrityError:
        raise _corrupt(what, hexdigest, blobs.uri) from None


# -- pull --------------------------------------------------------------------------------------
def remote_versions(remote: str | BlobStore, name: str) -> list[dict[str, Any]]:
    """The version records a remote holds for dataset ``name``, oldest first."""
    source = open_remote(remote)
    found: list[dict[str, Any]] = []
    for key in source.list_files(f"{RECORDS_PREFIX}{name}"):
        if not key.endswith(".json"):
            continue
        with contextlib.suppress(NotFoundError, orjson.JSONDecodeError):
            doc = orjson.loads(source.read_file(key))
            if doc.get("format") == RECORD_FORMAT and doc.get("name") == name:
                found.append(doc)
    found.sort(key=lambda d: int(d["version"]))
    return found


def _resolve_remote(source: BlobStore, ref: Ref) -> dict[str, Any]:
    records = remote_versions(source, ref.name)
    if not records:
        raise NotFoundError(
            f"the remote {source.uri} holds no version of dataset {ref.name!r}",
            hint=f"push one first: `loopline data push {ref.name} --remote {source.uri}`",
        )
    if ref.kind == "latest":
        return records[-1]
    if ref.kind == "version":
        matches = [r for r in records if str(r["version"]) == ref.value]
    elif ref.kind == "tag":  # the tags a version had when it was pushed; the newest wins
        matches = [r for r in records if ref.value in r.get("tags", [])][-1:]
    else:
        matches = [r for r in records if r["digest"].startswith(f"{ALGO}:{ref.value}")][-1:]
    if not matches:
        pushed = ", ".join(str(r["version"]) for r in records)
        raise NotFoundError(
            f"the remote {source.uri} holds no {ref} (versions pushed: {pushed})",
            hint="push that version first, or pull one of those",
        )
    return matches[0]


def pull(
    service: DataService,
    ref: str,
    remote: str | BlobStore,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Copy version ``ref`` from ``remote`` into this store (see :func:`loopline.data.pull`)."""
    source = open_remote(remote)
    record = _resolve_remote(source, parse_ref(ref))
    label = f"{record['name']}@{record['version']}"
    digest = Digest.parse(record["digest"])
    manifest_bytes = _fetch_bytes(source, digest.hex, f"the manifest of {label}")
    manifest = Manifest.from_bytes(manifest_bytes)
    wanted: dict[str, tuple[int, str]] = {}
    for e in manifest.entries:
        wanted.setdefault(e.digest, (e.size, e.path))
    wanted[digest.hex] = (len(manifest_bytes), f"the manifest of {label}")
    profile = record.get("profile_digest")
    if profile:
        wanted[Digest.parse(profile).hex] = (0, f"the profile of {label}")
    absent = _missing_here(service.blobs, wanted)
    tmp_dir = service.settings.home / "tmp"

    def receive(hexdigest: str) -> int:
        size, what = wanted[hexdigest]
        if hexdigest == digest.hex:
            data = manifest_bytes
        elif size <= SMALL:
            data = _fetch_bytes(source, hexdigest, what)
        else:
            return _fetch_large(service.blobs, source, hexdigest, what, tmp_dir)
        service.blobs.put_bytes(data)
        return len(data)

    # The manifest last: a store holding a manifest holds its files.
    files = [h for h in absent if h != digest.hex]
    moved = run_transfers(files, wanted, receive, workers, progress)
    if digest.hex in absent:
        with interrupts_deferred():  # written by this thread: no temp file left on Ctrl-C
            moved += receive(digest.hex)
    new = NewVersion(
        project=service.settings.project,
        name=record["name"],
        digest=str(digest),
        kind=record["kind"],
        file_count=int(record["file_count"]),
        total_size=int(record["total_size"]),
        user=record.get("created_by") or service.settings.user,
        message=record.get("message") or "",
        source=record.get("source") or "",
        schema_json=record.get("schema_json"),
        profile_digest=profile or None,
    )
    _, created = service.store.import_version(new, int(record["version"]))
    return TransferResult("pull", label, source.uri, len(wanted), len(absent), moved, created)


def _missing_here(blobs: BlobStore, wanted: dict[str, tuple[int, str]]) -> list[str]:
    """The wanted digests stored neither as blobs nor in an existing pack here."""
    absent = {d.hex for d in blobs.missing(Digest(ALGO, h) for h in wanted)}
    if absent and any(wanted[h][0] <= PACK_MAX_FILE for h in absent):
        packs = PackIndex.load(blobs)
        located = {h: w[0] for h in absent if (w := packs.locate(h)) is not None}
        if located:
            gone = {d.hex for d in blobs.missing(Digest(ALGO, p) for p in set(located.values()))}
            absent -= {h for h, pack in located.items() if pack not in gone}
    return sorted(absent)


def _fetch_bytes(source: BlobStore, hexdigest: str, what: str) -> bytes:
    data = source.get_bytes(Digest(ALGO, hexdigest), verify=False)
    if hash_bytes(data) != hexdigest:
        raise _corrupt(what, hexdigest, source.uri)
    return data


def _fetch_large(
    blobs: BlobStore, source: BlobStore, hexdigest: str, what: str, tmp_dir: Path
) -> int:
    """Download a large blob to a temp file (verified), then store it here."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"pull-{uuid.uuid4().hex}"
    blob = Digest(ALGO, hexdigest)
    try:
        try:
            source.get_file(blob, tmp, verify=True)
        except IntegrityError:
            raise _corrupt(what, hexdigest, source.uri) from None
        size = tmp.stat().st_size
        blobs.put_file(tmp, digest=blob)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return size


# -- both ----------------------------------------------------------------------------------------
def run_transfers(
    digests: list[str],
    wanted: dict[str, tuple[int, str]],
    move: Callable[[str], int],
    workers: int | None,
    progress: Progress | None,
) -> int:
    """``move(digest) -> bytes moved`` for every digest, on a pool, reporting files and bytes."""
    return run_batches(
        [[h] for h in digests], lambda h: wanted[h][0], lambda b: move(b[0]), workers, progress
    )


def run_batches(
    batches: Sequence[list[str]],
    size: Callable[[str], int],
    move: Callable[[list[str]], int],
    workers: int | None,
    progress: Progress | None,
) -> int:
    """``move(batch) -> bytes moved`` for every batch on a few threads, reporting files and bytes."""
    progress = progress or NoProgress()
    progress.start(sum(len(b) for b in batches), sum(size(h) for b in batches for h in b))
    # One batch at a time per thread: transfers wait on the network, not on the CPU.
    pool = Pool(len(batches), workers or WORKERS, progress, batch=1)
    moved = [0] * len(batches)

    def work(i: int, worker: int) -> None:
        moved[i] = move(batches[i])
        pool.files[worker] += len(batches[i])
        pool.bytes[worker] += moved[i]

    try:
        pool.run(work)
    finally:
        progress.finish()
    return sum(moved)

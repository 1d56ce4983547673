"""``checkout``: write a version's files to a folder; ``materialize``: the cached local copy.

Every file is verified against its digest while it is written, and written to a
temp name then renamed, so a corrupt blob is reported (by digest and stored path)
and never appears under its real name. Files are reflinked where the file system
shares extents (btrfs, XFS), else copied by the kernel (``copy_file_range``);
either way editing a checked-out file never changes a stored blob. ``link=True``
makes read-only hard links to the stored blobs instead: no copy at all, but a
process that ignores the read-only mode (root does) could change the store.

A checkout into a new or empty folder is all or nothing: the files go to a
staging folder next to it, renamed into place at the end. ``force=True`` instead
makes an existing folder match the version: matching files are kept, others
replaced one by one (atomically each), extra files deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.data._fs import SMALL, Cancelled, copy_hashed, hash_bytes, hash_path, read_exact
from loopline.data._pool import Pool
from loopline.data.entities import CheckoutResult
from loopline.data.packs import PACK_MAX_FILE, PackIndex, read_packed
from loopline.errors import IntegrityError, InvalidArgumentError, InvalidStateError, NotFoundError

if TYPE_CHECKING:
    from loopline.data.manifest import Entry
    from loopline.data.progress import Progress
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore

__all__ = ["CACHE_DIRNAME", "checkout", "fetch", "materialize"]

CACHE_DIRNAME = "data-cache"
_STAGING = ".loopline-partial-"


def _corrupt(entry: Entry, where: str, what: str) -> IntegrityError:
    return IntegrityError(
        f"blob {entry.blob} ({where}) is corrupt: its content does not match its digest; "
        f"{what} was not written",
        hint="run `loopline data verify` to list every damaged blob",
    )


def _mode(entry: Entry, read_only: bool) -> int:
    if read_only:
        return 0o555 if entry.executable else 0o444
    return 0o755 if entry.executable else 0o644


def fetch(
    blobs: BlobStore,
    entry: Entry,
    dest: str,
    *,
    link: bool = False,
    read_only: bool = False,
    cancel: Cancelled | None = None,
    packs: PackIndex | None = None,
    content: bytes | None = None,
) -> str:
    """Write one file's verified content at ``dest`` atomically; how (reflink, copy, hardlink).

    ``content``, when given, is the file's content fetched already (a server's batch),
    verified here like any other.
    """
    object_path = getattr(blobs, "object_path", None)
    tmp = f"{os.path.dirname(dest)}/.{os.path.basename(dest)}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        if content is not None:
            data: bytes | None = _verified(entry, content, blobs.uri)
        else:
            where = packs.locate(entry.digest) if packs is not None else None
            data = _packed(blobs, entry, where) if where is not None else None
        if data is not None:
            _write_new(tmp, data, _mode(entry, read_only))
            method = "copy"
        elif object_path is None:
            try:
                blobs.get_file(entry.blob, Path(tmp), verify=True)
            except IntegrityError:  # say which file of the version it was
                raise _corrupt(entry, blobs.uri, entry.path) from None
            os.chmod(tmp, _mode(entry, read_only))
            method = "copy"
        else:
            blob = str(object_path(entry.blob))
            method = _fetch_local(blob, entry, tmp, link, read_only, cancel)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return method


def _packed(blobs: BlobStore, entry: Entry, where: tuple[str, int, int]) -> bytes | None:
    """A packed file's verified bytes; None when its pack is gone (the file may be a blob too)."""
    pack, offset, size = where
    try:
        data = read_packed(blobs, pack, offset, size)
    except NotFoundError:
        return None
    return _verified(entry, data, f"in pack blake3:{pack} at offset {offset}")


def _verified(entry: Entry, data: bytes, where: str) -> bytes:
    """``data`` when it is ``entry``'s content (size and digest), else the error naming it."""
    if len(data) != entry.size or hash_bytes(data) != entry.digest:
        raise _corrupt(entry, where, entry.path)
    return data


def _write_new(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _fetch_local(
    blob: str, entry: Entry, tmp: str, link: bool, read_only: bool, cancel: Cancelled | None
) -> str:
    try:
        size = os.stat(blob).st_size
    except FileNotFoundError:
        raise NotFoundError(
            f"blob {entry.blob} of {entry.path} is missing from the store ({blob})",
            hint="run `loopline data verify` to list every missing blob",
        ) from None
    if size != entry.size:
        raise _corrupt(entry, blob, entry.path)
    if link and not entry.executable:
        if hash_path(blob, entry.size) != entry.digest:
            raise _corrupt(entry, blob, tmp)
        try:
            os.link(blob, tmp)
            return "hardlink"
        except OSError:
            pass  # another file system: copy instead
    if entry.size <= SMALL:
        _write_new(
            tmp, _verified(entry, read_exact(blob, entry.size), blob), _mode(entry, read_only)
        )
        return "copy"
    src = os.open(blob, os.O_RDONLY)
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            digest, cloned = copy_hashed(src, fd, entry.size, name=blob, cancel=cancel)
            os.fchmod(fd, _mode(entry, read_only))
        finally:
            os.close(fd)
    finally:
        os.close(src)
    if digest != entry.digest:
        raise _corrupt(entry, blob, entry.path)
    return "reflink" if cloned else "copy"


def _packs_for(blobs: BlobStore, entries: list[Entry]) -> PackIndex | None:
    """The pack indexes, when some of ``entries`` are small enough to be packed."""
    if any(e.size <= PACK_MAX_FILE for e in entries):
        return PackIndex.load(blobs)
    return None


def _write_all(
    service: DataService,
    entries: list[Entry],
    root: str,
    *,
    link: bool,
    read_only: bool,
    workers: int | None,
    progress: Progress | None,
) -> dict[str, int]:
    """Fetch ``entries`` under ``root`` in parallel; counts per method."""
    folders = {os.path.dirname(f"{root}/{e.path}") for e in entries}
    for folder in sorted(folders):
        os.makedirs(folder, exist_ok=True)
    if service.http is not None:
        methods = _write_remote(service.blobs, entries, root, read_only, workers, progress)
    else:
        methods = _write_local(service.blobs, entries, root, link, read_only, workers, progress)
    counts: dict[str, int] = {}
    for method in methods:
        counts[method] = counts.get(method, 0) + 1
    return counts


def _write_local(
    blobs: BlobStore,
    entries: list[Entry],
    root: str,
    link: bool,
    read_only: bool,
    workers: int | None,
    progress: Progress | None,
) -> list[str]:
    packs = _packs_for(blobs, entries)
    methods: list[str] = [""] * len(entries)
    size = sum(e.size for e in entries)
    pool = Pool(len(entries), workers, progress, size=size)
    if progress is not None:
        progress.start(len(entries), size)

    def work(i: int, worker: int) -> None:
        entry = entries[i]
        methods[i] = fetch(
            blobs,
            entry,
            f"{root}/{entry.path}",
            link=link,
            read_only=read_only,
            cancel=pool.cancel,
            packs=packs,
        )
        pool.files[worker] += 1
        pool.bytes[worker] += entry.size

    try:
        pool.run(work)
    finally:
        if progress is not None:
            progress.finish()
    return methods


def _write_remote(
    blobs: BlobStore,
    entries: list[Entry],
    root: str,
    read_only: bool,
    workers: int | None,
    progress: Progress | None,
) -> list[str]:
    """Fetch from a server: small files many per request, each verified as it is written."""
    from loopline.data.http import HttpBlobStore, transfer_batches
    from loopline.data.transfer import run_batches

    assert isinstance(blobs, HttpBlobStore)
    by_digest: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        by_digest.setdefault(e.digest, []).append(i)
    sizes = {e.digest: e.size for e in entries}
    batches = transfer_batches(list(by_digest), sizes.__getitem__)
    methods: list[str] = [""] * len(entries)

    def move(batch: list[str]) -> int:
        got = (
            blobs.get_batch([entries[by_digest[d][0]].blob for d in batch])
            if len(batch) > 1
            else {}
        )
        for d in batch:
            content = got.get(entries[by_digest[d][0]].blob)
            for i in by_digest[d]:
                entry = entries[i]
                dest = f"{root}/{entry.path}"
                methods[i] = fetch(blobs, entry, dest, read_only=read_only, content=content)
        return sum(sizes[d] * len(by_digest[d]) for d in batch)

    run_batches(batches, lambda d: sizes[d] * len(by_digest[d]), move, workers, progress)
    return methods


def _staged(
    service: DataService,
    version: DatasetVersion,
    dest: Path,
    *,
    link: bool,
    read_only: bool,
    workers: int | None,
    progress: Progress | None,
) -> dict[str, int]:
    """Write every file to a staging folder beside ``dest``, then rename it to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f"{_STAGING}{dest.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        methods = _write_all(
            service,
            version.manifest.entries,
            os.fspath(staging),
            link=link,
            read_only=read_only,
            workers=workers,
            progress=progress,
        )
        if dest.is_dir():
            dest.rmdir()  # empty (checked by the caller)
        os.rename(staging, dest)
    except BaseException:
        _rmtree(staging)
        raise
    return methods


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def checkout(
    service: DataService,
    ref: str | DatasetVersion,
    dest: str | os.PathLike[str],
    *,
    link: bool = False,
    force: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> CheckoutResult:
    """Write the files of version ``ref`` to ``dest`` (see :func:`loopline.data.checkout`)."""
    version = service.resolve(ref)
    target = Path(dest).absolute()
    if version.kind == "file" and not (target.is_dir() and any(target.iterdir())):
        return _checkout_file(service, version, target, link=link, force=force)
    if target.exists() and not target.is_dir():
        raise InvalidArgumentError(
            f"{target} is a file; {version.ref} is a folder",
            hint="give a folder path (a new one, or an existing one with --force)",
        )
    if target.is_dir() and any(target.iterdir()):
        if version.kind == "file":
            return _checkout_file(
                service, version, target / version.manifest.entries[0].path, link=link, force=force
            )
        if not force:
            raise InvalidStateError(
                f"{target} exists and is not empty",
                hint="choose a new folder, or pass --force to make it match the version "
                "(files not in the version are deleted)",
            )
        return _sync(service, version, target, link=link, workers=workers, progress=progress)
    methods = _staged(
        service, version, target, link=link, read_only=False, workers=workers, progress=progress
    )
    return CheckoutResult(
        version.ref,
        os.fspath(target),
        version.file_count,
        version.total_size,
        version.file_count,
        0,
        methods,
    )


def _checkout_file(
    service: DataService, version: DatasetVersion, target: Path, *, link: bool, force: bool
) -> CheckoutResult:
    entry = version.manifest.entries[0]
    if target.is_dir():
        target = target / entry.path
    if target.exists() and not force:
        raise InvalidStateError(
            f"{target} exists", hint="pass --force to replace it, or choose another path"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    packs = _packs_for(service.blobs, [entry])
    method = fetch(service.blobs, entry, os.fspath(target), link=link, packs=packs)
    return CheckoutResult(version.ref, os.fspath(target), 1, entry.size, 1, 0, {method: 1})


def _sync(
    service: DataService,
    version: DatasetVersion,
    target: Path,
    *,
    link: bool,
    workers: int | None,
    progress: Progress | None,
) -> CheckoutResult:
    """Make an existing folder match the version, keeping files that already do."""
    import time

    from loopline.data.add import build_manifest
    from loopline.data.ingest import hash_files
    from loopline.data.scan import scan

    snapshot = scan(target, exclude=service.settings.home)
    started = time.time_ns()
    known = service.state.lookup(snapshot).known
    unknown = [f for f in snapshot.files if f.relpath not in known]
    digests = {**known, **hash_files(unknown, workers=workers)}
    manifest = build_manifest(snapshot, digests)
    service.state.record(snapshot, digests, str(manifest.digest), started_ns=started)
    current = manifest.by_path
    wanted = version.manifest.by_path
    stale = [
        e
        for p, e in wanted.items()
        if p not in current
        or (current[p].digest, current[p].executable) != (e.digest, e.executable)
    ]
    extra = [p for p in current if p not in wanted]
    for path in extra:
        (target / path).unlink()
    for path in extra:  # folders left empty
        parent = (target / path).parent
        while parent != target and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    for e in stale:  # a folder where a file goes, or the reverse
        spot = target / e.path
        if spot.is_dir():
            _rmtree(spot)
    methods = (
        _write_all(
            service,
            stale,
            os.fspath(target),
            link=link,
            read_only=False,
            workers=workers,
            progress=progress,
        )
        if stale
        else {}
    )
    return CheckoutResult(
        version.ref,
        os.fspath(target),
        version.file_count,
        version.total_size,
        len(stale),
        len(extra),
        methods,
    )


def materialize(service: DataService, version: DatasetVersion) -> Path:
    """The version's files in a verified, read-only folder cached by content digest."""
    cache = service.settings.home / CACHE_DIRNAME / version.digest.hex
    if cache.is_dir():
        return cache
    staging = cache.parent / f"{_STAGING}{version.digest.hex[:16]}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        _write_all(
            service,
            version.manifest.entries,
            os.fspath(staging),
            link=False,
            read_only=True,
            workers=None,
            progress=None,
        )
        try:
            os.rename(staging, cache)
        except OSError:
            if not cache.is_dir():
                raise
            _rmtree(staging)  # another process materialised it first
    except BaseException:
        if staging.exists():
            _rmtree(staging)
        raise
    return cache

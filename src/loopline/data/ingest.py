"""Hashing files and storing them as blobs, many at once.

:func:`ingest` takes a snapshot's files and the digests already known for some of
them (from the state cache), and makes sure every file's content is in the blob
store; it returns every file's digest. Work is spread over a few threads (file
system calls and blake3 release the GIL); small files are read, hashed and
written whole, large ones are copied by the kernel while being hashed.

Writes follow the blob store's rule (temp file, then rename), so a process killed
at any point leaves at most a stray temp file, never a partial blob. Stored
objects are read-only (mode 0444).

A sink is how blobs get stored: :class:`LocalSink` writes straight into a
:class:`~loopline.store.blobs.local.LocalBlobStore`'s layout; :class:`StoreSink`
goes through the :class:`~loopline.store.blobs.BlobStore` interface (any store).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.data._fs import (
    SMALL,
    Cancelled,
    ChangedWhileReadingError,
    copy_hashed,
    hash_bytes,
    hash_path,
    read_exact,
)
from loopline.data._pool import Pool, interrupts_deferred
from loopline.data.packs import PACK_MAX_FILE, PACK_MIN_FILES, PackIndex, PackWriter
from loopline.data.progress import NoProgress, Progress
from loopline.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from loopline.data.scan import ScannedFile
    from loopline.store.blobs import BlobStore
    from loopline.store.digest import Digest

__all__ = ["LocalSink", "Sink", "StoreSink", "hash_files", "ingest", "sink_for"]


class Sink:
    """Where ingested content goes."""

    def has(self, digest: str) -> bool:
        raise NotImplementedError

    def keep(self, digest: str) -> None:
        """Mark an existing blob as just used (garbage collection spares young blobs)."""

    def put_bytes(self, data: bytes, digest: str) -> None:
        raise NotImplementedError

    def put_file(self, f: ScannedFile, cancel: Cancelled, on_bytes: Callable[[int], None]) -> str:
        """Store a large file; its digest."""
        raise NotImplementedError

    def discard_temporaries(self) -> None:
        """Remove what this process left half-written (called once its workers stopped)."""


class LocalSink(Sink):
    """Writes into a local blob store's ``objects/`` through its ``tmp/`` folder."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.objects = str(root / "objects")
        self.tmp = str(root / "tmp")
        self.fsync = fsync
        self._shards: set[str] = set()
        self._names = itertools.count()
        self._pid = os.getpid()
        os.makedirs(self.tmp, exist_ok=True)

    def path(self, digest: str) -> str:
        return f"{self.objects}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def keep(self, digest: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path(digest))

    def discard_temporaries(self) -> None:
        # Each write removes its own temp file when it fails; this sweep is the
        # backstop that keeps "interrupted: nothing partial was left behind" true.
        prefix = f"i-{self._pid}-"
        with contextlib.suppress(OSError), os.scandir(self.tmp) as entries:
            for entry in entries:
                if entry.name.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def _temp(self) -> tuple[int, str]:
        name = f"{self.tmp}/i-{self._pid}-{threading.get_ident()}-{next(self._names)}"
        return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444), name

    def _commit(self, tmp: str, digest: str) -> None:
        shard = digest[:2]
        if shard not in self._shards:
            os.makedirs(f"{self.objects}/{shard}", exist_ok=True)
            self._shards.add(shard)
        os.rename(tmp, self.path(digest))
        if self.fsync:
            fd = os.open(f"{self.objects}/{shard}", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def put_bytes(self, data: bytes, digest: str) -> None:
        fd, tmp = self._temp()
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_file(self, f: ScannedFile, cancel: Cancelled, on_bytes: Callable[[int], None]) -> str:
        try:
            src = os.open(f.abspath, os.O_RDONLY)
        except OSError as exc:
            raise _unreadable(f, exc) from exc
        try:
            fd, tmp = self._temp()
            try:
                try:
                    digest, _ = copy_hashed(
                        src, fd, f.size, name=f.abspath, cancel=cancel, on_bytes=on_bytes
                    )
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                _check_unchanged(f)
                if self.has(digest):
                    os.unlink(tmp)
                    self.keep(digest)
                else:
                    self._commit(tmp, digest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        finally:
            os.close(src)
        return digest


class StoreSink(Sink):
    """Any blob store, through its interface (hash locally, then ``put_file``)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def has(self, digest: str) -> bool:
        return self.store.exists(_digest(digest))

    def put_bytes(self, data: bytes, digest: str) -> None:
        stored = self.store.put_bytes(data)
        if stored.hex != digest:
            raise IntegrityError(f"the blob store computed {stored} for content hashed as {digest}")

    def put_file(self, f: ScannedFile, cancel: Cancelled, on_bytes: Callable[[int], None]) -> str:
        digest = hash_path(f.abspath, f.size)
        _check_unchanged(f)
        if not self.has(digest):
            self.store.put_file(Path(f.abspath), digest=_digest(digest))
        on_bytes(f.size)
        return digest


def sink_for(store: BlobStore, *, fsync: bool = False) -> Sink:
    from loopline.store.blobs.local import LocalBlobStore

    if type(store) is LocalBlobStore:
        return LocalSink(store.root, fsync=fsync)
    return StoreSink(store)


def _digest(hexdigest: str) -> Digest:
    from loopline.store.digest import ALGO, Digest

    return Digest(ALGO, hexdigest)


def _unreadable(f: ScannedFile, exc: OSError) -> Exception:
    from loopline.errors import InvalidArgumentError

    return InvalidArgumentError(
        f"cannot read {f.abspath}: {exc.strerror or exc}",
        hint="check that the file exists and that you may read it",
    )


def _check_unchanged(f: ScannedFile) -> None:
    try:
        info = os.stat(f.abspath)
    except OSError as exc:
        raise _unreadable(f, exc) from exc
    if (info.st_size, info.st_mtime_ns, info.st_ino) != (f.size, f.mtime_ns, f.ino):
        raise ChangedWhileReadingError(f.abspath)


class _Present:
    """Whether content is stored already (as a blob, or in a pack); marks what it finds as used."""

    def __init__(self, sink: Sink, blobs: BlobStore | None) -> None:
        self.sink = sink
        self.blobs = blobs
        self._index: PackIndex | None = None
        self._packs: dict[str, bool] = {}
        self._lock = threading.Lock()

    def index(self) -> PackIndex | None:
        if self._index is None and self.blobs is not None:
            with self._lock:
                if self._index is None:
                    self._index = PackIndex.load(self.blobs)
        return self._index

    def __call__(self, digest: str) -> bool:
        index = self.index()
        where = index.locate(digest) if index is not None else None
        if where is not None:
            pack = where[0]
            if pack not in self._packs:
                self._packs[pack] = self.sink.has(pack)
                if self._packs[pack]:
                    self.sink.keep(pack)
            if self._packs[pack]:
                return True
        if self.sink.has(digest):
            self.sink.keep(digest)
            return True
        return False


def ingest(
    files: Sequence[ScannedFile],
    known: dict[str, str],
    sink: Sink,
    *,
    blobs: BlobStore | None = None,
    referenced: set[str] | frozenset[str] | None = frozenset(),
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Store every file's content; ``relpath -> hex digest`` of all ``files``.

    ``known`` digests (by relpath) are trusted; their content is only looked for
    (and stored again when missing) unless they are in ``referenced``, the digests
    an existing version already needs (None: every known digest is). With ``blobs``, content already in a pack
    counts as stored, and when many small files need storing they go into packs
    (see :mod:`loopline.data.packs`) instead of one blob each.
    """
    progress = progress or NoProgress()
    digests = dict(known)
    if referenced is None:
        todo = [f for f in files if f.relpath not in known]
    else:
        todo = [f for f in files if known.get(f.relpath) not in referenced]
    size = sum(f.size for f in todo)
    progress.start(len(todo), size)
    pool = Pool(len(todo), workers, progress, size=size)
    # Looking for content in packs means loading their indexes: worth it for many files
    # (the same tree under another name), not for a few changed ones.
    present = _Present(sink, blobs if len(todo) >= PACK_MIN_FILES else None)
    writers = [PackWriter(blobs) for _ in range(pool.workers)] if blobs is not None else None

    def work(i: int, worker: int) -> None:
        f = todo[i]
        digest = digests.get(f.relpath)
        if digest is not None and present(digest):
            pass
        elif f.size <= SMALL:
            data = read_exact(f.abspath, f.size)
            digest = hash_bytes(data)
            if not present(digest):
                if writers is not None and f.size <= PACK_MAX_FILE:  # stored at the end
                    writers[worker].add(digest, data)
                else:
                    sink.put_bytes(data, digest)
        else:

            def on_bytes(n: int) -> None:
                pool.bytes[worker] += n

            digest = sink.put_file(f, pool.cancel, on_bytes)
            pool.bytes[worker] -= f.size  # counted chunk by chunk already
        digests[f.relpath] = digest
        pool.files[worker] += 1
        pool.bytes[worker] += f.size

    try:
        pool.run(work)
        if writers is not None:
            with interrupts_deferred():
                _store_collected(writers, sink)
    except BaseException:
        sink.discard_temporaries()  # every worker has stopped: nothing writes any more
        raise
    finally:
        progress.finish()
    return digests


def _store_collected(writers: list[PackWriter], sink: Sink) -> None:
    """Packs when enough small files were collected, else one blob each."""
    if any(w.packs for w in writers) or sum(w.pending for w in writers) >= PACK_MIN_FILES:
        for writer in writers:
            writer.flush()
        return
    for writer in writers:
        for digest, data in writer.take():
            sink.put_bytes(data, digest)


def hash_files(
    files: Sequence[ScannedFile],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """``relpath -> hex digest`` of ``files``, storing nothing."""
    progress = progress or NoProgress()
    digests: dict[str, str] = {}
    size = sum(f.size for f in files)
    progress.start(len(files), size)
    pool = Pool(len(files), workers, progress, size=size)

    def work(i: int, worker: int) -> None:
        f = files[i]
        digests[f.relpath] = hash_path(f.abspath, f.size)
        pool.files[worker] += 1
        pool.bytes[worker] += f.size

    try:
        pool.run(work)
    finally:
        progress.finish()
    return digests

"""Packs: many small files stored as one blob, so adding 20,000 files creates a few files, not 20,000.

Creating a file costs the kernel far more than writing a few KiB into it (on this
project's machines about 50-250 µs, most of an add of small files). So when an add
stores many small files, their contents are concatenated into *pack* blobs of up
to 32 MiB, and each pack gets an index in the blob store's plain-path area,
``data/packs/<pack hex>``: ``[[file digest, offset, size], ...]``.

Nothing else changes: a manifest still lists each file's own blake3 digest (a
version's identity does not depend on how its files are stored), a pack is an
ordinary content-addressed blob, and reading a file means finding its digest as a
blob of its own or, through the indexes, as a slice of a pack; every read is
verified against the file's digest. Garbage collection keeps a pack while any live
version needs one of its files.

A pack is written (temp file, rename) before its index, and both before the
version that needs them is recorded, so a killed add leaves at most unreferenced
blobs.

>>> from loopline.store.blobs import open_blob_store
>>> import tempfile
>>> store = open_blob_store(tempfile.mkdtemp())
>>> writer = PackWriter(store)
>>> writer.add("aa" * 32, b"first"); writer.add("bb" * 32, b"second")
>>> pack = writer.flush()
>>> index = PackIndex.load(store)
>>> index.locate("bb" * 32) == (pack, 5, 6)
True
>>> read_packed(store, pack, 5, 6)
b'second'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orjson

from loopline.errors import NotFoundError
from loopline.store.digest import ALGO, Digest

if TYPE_CHECKING:
    from loopline.store.blobs import BlobStore

__all__ = [
    "INDEX_PREFIX",
    "PACK_MAX_FILE",
    "PACK_MIN_FILES",
    "PACK_TARGET",
    "PackIndex",
    "PackWriter",
    "read_packed",
]

INDEX_PREFIX = "data/packs/"
PACK_MAX_FILE = 1 << 20
"""Files up to this size may go into packs."""
PACK_MIN_FILES = 64
"""An add packs only when it stores at least this many small files (else one blob each)."""
PACK_TARGET = 32 << 20
"""A pack is closed once it holds this many bytes."""


class PackWriter:
    """Collects small files' contents and stores them as packs with their indexes."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._buffer = bytearray()
        self._rows: list[list[object]] = []
        self._seen: set[str] = set()
        self.packs: list[str] = []

    def add(self, digest: str, data: bytes) -> None:
        if digest in self._seen:
            return
        self._seen.add(digest)
        self._rows.append([digest, len(self._buffer), len(data)])
        self._buffer += data
        if len(self._buffer) >= PACK_TARGET:
            self.flush()

    @property
    def pending(self) -> int:
        """Files collected and not stored yet."""
        return len(self._rows)

    def take(self) -> list[tuple[str, bytes]]:
        """Give up the collected files without storing them: ``(digest, content)`` pairs."""
        view = bytes(self._buffer)
        taken = [(str(d), view[int(o) : int(o) + int(n)]) for d, o, n in self._rows]  # type: ignore[call-overload]
        self._buffer = bytearray()
        self._rows = []
        self._seen = set()
        return taken

    def flush(self) -> str | None:
        """Store the pack collected so far and its index; the pack's hex digest (None: empty)."""
        if not self._rows:
            return None
        pack = self.blobs.put_bytes(bytes(self._buffer)).hex
        self.blobs.write_file(INDEX_PREFIX + pack, orjson.dumps(self._rows))
        self.packs.append(pack)
        self._buffer = bytearray()
        self._rows = []
        return pack


class PackIndex:
    """Where packed files are: ``file digest -> (pack digest, offset, size)``, from every index."""

    def __init__(self, locations: dict[str, tuple[str, int, int]], packs: set[str]) -> None:
        self._locations = locations
        self.packs = packs

    @classmethod
    def load(cls, blobs: BlobStore) -> PackIndex:
        locations: dict[str, tuple[str, int, int]] = {}
        packs: set[str] = set()
        for key in blobs.list_files(INDEX_PREFIX.rstrip("/")):
            pack = key.rsplit("/", 1)[-1]
            try:
                rows = orjson.loads(blobs.read_file(key))
            except (NotFoundError, orjson.JSONDecodeError):
                continue  # removed meanwhile, or a torn write of a pack nothing needs yet
            packs.add(pack)
            for digest, offset, size in rows:
                locations.setdefault(digest, (pack, offset, size))
        return cls(locations, packs)

    def locate(self, digest: str) -> tuple[str, int, int] | None:
        return self._locations.get(digest)

    def __contains__(self, digest: str) -> bool:
        return digest in self._locations

    def members(self) -> dict[str, list[str]]:
        """``pack -> the file digests it holds``."""
        found: dict[str, list[str]] = {}
        for digest, (pack, _, _) in self._locations.items():
            found.setdefault(pack, []).append(digest)
        return found


def read_packed(blobs: BlobStore, pack: str, offset: int, size: int) -> bytes:
    """The bytes of one packed file (not verified: callers hash them)."""
    object_path = getattr(blobs, "object_path", None)
    if object_path is not None:
        try:
            fd = os.open(object_path(Digest(ALGO, pack)), os.O_RDONLY)
        except FileNotFoundError:
            raise NotFoundError(
                f"pack blob {ALGO}:{pack} is missing from {blobs.uri}",
                hint="run `loopline data verify` to list every missing blob",
            ) from None
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)
    with blobs.open(Digest(ALGO, pack)) as fh:
        fh.seek(offset)
        return fh.read(size)

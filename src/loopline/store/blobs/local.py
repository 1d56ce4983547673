"""The local-filesystem blob store.

Layout under the root::

    objects/ab/cdef...   immutable blobs, sharded by the first two hex characters, read-only
    files/<key>          the plain-path area
    tmp/                 writes in progress (same file system, so the final rename is atomic)

A write goes to ``tmp/`` and is renamed into place, so a killed process leaves at
most a stray temp file, never a partial blob.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from loopline.errors import IntegrityError, NotFoundError
from loopline.store.blobs.base import BlobStore
from loopline.store.digest import ALGO, Digest, Hasher
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalBlobStore"]

CHUNK = 4 * 1024 * 1024
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_REST = re.compile(r"^[0-9a-f]{62}$")


class LocalBlobStore(BlobStore):
    """Blobs in a local folder.

    >>> import tempfile
    >>> store = LocalBlobStore(tempfile.mkdtemp())
    >>> d = store.put_bytes(b"abc")
    >>> store.get_bytes(d)
    b'abc'
    >>> store.exists(d), store.size(d)
    (True, 3)
    """

    def __init__(self, root: str | Path, *, fsync: bool = False) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self.fsync = fsync
        self._objects = self.root / "objects"
        self._files = self.root / "files"
        self._tmp = self.root / "tmp"
        for folder in (self._objects, self._files, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    # -- helpers -------------------------------------------------------------------
    def object_path(self, digest: Digest) -> Path:
        head, tail = digest.shard
        return self._objects / head / tail

    def _temp(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self._tmp, prefix="w-")

    def _commit(self, tmp: str, digest: Digest) -> None:
        final = self.object_path(digest)
        if final.exists():
            os.unlink(tmp)
            return
        os.chmod(tmp, 0o444)
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)

    # -- objects -------------------------------------------------------------------
    def put_file(self, path: Path, *, digest: Digest | None = None) -> Digest:
        if digest is not None and self.exists(digest):
            return digest
        fd, tmp = self._temp()
        try:
            hasher = Hasher()
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    dst.write(chunk)
                if self.fsync:
                    dst.flush()
                    os.fsync(dst.fileno())
            actual = Digest(ALGO, hasher.hexdigest())
            if digest is not None and actual != digest:
                raise IntegrityError(
                    f"{path} changed while it was being stored (expected {digest}, read {actual})",
                    hint="retry once the file is no longer being written",
                )
            self._commit(tmp, actual)
            return actual
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of_bytes(data)
        if self.exists(digest):
            return digest
        fd, tmp = self._temp()
        try:
            with os.fdopen(fd, "wb") as dst:
                dst.write(data)
                if self.fsync:
                    dst.flush()
                    os.fsync(dst.fileno())
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest

    def exists(self, digest: Digest) -> bool:
        return self.object_path(digest).is_file()

    def size(self, digest: Digest) -> int:
        try:
            return self.object_path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def _missing(self, digest: Digest) -> NotFoundError:
        return NotFoundError(
            f"blob {digest} is missing from {self.uri}",
            hint="run `loopline data verify` to check the store",
        )

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.object_path(digest), "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def get_bytes(self, digest: Digest, *, verify: bool = True) -> bytes:
        with self.open(digest) as fh:
            data = fh.read()
        if verify and Digest.of_bytes(data) != digest:
            raise self._corrupt(digest)
        return data

    def _corrupt(self, digest: Digest) -> IntegrityError:
        return IntegrityError(
            f"blob {digest} at {self.object_path(digest)} is corrupt: its content does not match",
            hint="restore it from a remote with `loopline data pull`, or delete it and re-add",
        )

    def get_file(self, digest: Digest, dest: Path, *, verify: bool = True) -> None:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            hasher = Hasher() if verify else None
            with self.open(digest) as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    if hasher is not None:
                        hasher.update(chunk)
                    dst.write(chunk)
            if hasher is not None and hasher.hexdigest() != digest.hex:
                raise self._corrupt(digest)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.object_path(digest).unlink()

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored digest; files that are not blobs (strays, editor backups) are skipped."""
        for shard in sorted(self._objects.iterdir()):
            if not _SHARD.match(shard.name) or not shard.is_dir():
                continue
            for blob in shard.iterdir():
                if _REST.match(blob.name):
                    yield Digest(ALGO, shard.name + blob.name)

    # -- plain-path files ------------------------------------------------------------
    def _file_path(self, key: str) -> Path:
        return self._files / safe_relpath(key)

    def write_file(self, key: str, data: bytes) -> None:
        final = self._file_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = self._temp()
        try:
            with os.fdopen(fd, "wb") as dst:
                dst.write(data)
                if self.fsync:
                    dst.flush()
                    os.fsync(dst.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read_file(self, key: str) -> bytes:
        try:
            return self._file_path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"file {key!r} is not in {self.uri}") from None

    def list_files(self, prefix: str = "") -> list[str]:
        base = self._files / safe_relpath(prefix, allow_empty=True)
        if not base.exists():
            return []
        if base.is_file():
            return [safe_relpath(prefix)]
        return sorted(p.relative_to(self._files).as_posix() for p in base.rglob("*") if p.is_file())

    def delete_file(self, key: str) -> None:
        path = self._file_path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

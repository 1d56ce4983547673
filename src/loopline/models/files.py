"""The model's files: every relative path with its size and blake3 digest.

Hashing uses blake3's memory-mapped, multi-threaded mode, so verifying a large
model costs a fraction of reading it.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "w.bin").write_bytes(b"weights")
>>> entries = scan(root)
>>> [(e.path, e.size) for e in entries]
[('w.bin', 7)]
>>> verify(root, entries)
>>> _ = (root / "w.bin").write_bytes(b"tampered")
>>> verify(root, entries)
Traceback (most recent call last):
...
loopline.errors.IntegrityError: model file 'w.bin' does not match its recorded digest (size 8, recorded 7) (the model was changed or corrupted after it was saved: save or download it again)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.errors import IntegrityError
from loopline.store.digest import ALGO, Digest, Hasher
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["FileEntry", "hash_file", "scan", "verify"]

_HINT = "the model was changed or corrupted after it was saved: save or download it again"
_MMAP_MIN = 1 << 20  # below this, a plain read is cheaper than mapping the file


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One model file: relative POSIX path, size in bytes, content digest."""

    path: str
    size: int
    digest: Digest

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": str(self.digest)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileEntry:
        return cls(safe_relpath(str(data["path"])), int(data["size"]), Digest.parse(data["digest"]))


def hash_file(path: Path) -> Digest:
    """The blake3 digest of a file (memory-mapped and multi-threaded when large)."""
    hasher = Hasher()
    if path.stat().st_size >= _MMAP_MIN:
        hasher.update_mmap(os.fspath(path))
    else:
        hasher.update(path.read_bytes())
    return Digest(ALGO, hasher.hexdigest())


def scan(root: Path, *, exclude: Iterable[str] = ()) -> list[FileEntry]:
    """Every regular file under ``root`` (sorted by path), except the ``exclude`` paths."""
    skip = set(exclude)
    entries = []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel not in skip:
            entries.append(FileEntry(rel, file.stat().st_size, hash_file(file)))
    return entries


def verify(
    root: Path, entries: Iterable[FileEntry], *, exclude: Iterable[str] = (), hashed: bool = False
) -> None:
    """Check every recorded file against its digest; refuse missing and unrecorded files.

    ``hashed=True`` skips rehashing the content (sizes and the file list are still
    checked) when the caller knows each file was just written with a digest check
    against the same recorded digests, as a verified download is.

    Raises :class:`~loopline.errors.IntegrityError` naming the first file that fails.
    """
    recorded = {e.path for e in entries}
    for entry in entries:
        file = root / entry.path
        if not file.is_file():
            raise IntegrityError(f"model file {entry.path!r} is missing", hint=_HINT)
        size = file.stat().st_size
        if size != entry.size:
            raise IntegrityError(
                f"model file {entry.path!r} does not match its recorded digest "
                f"(size {size}, recorded {entry.size})",
                hint=_HINT,
            )
        if not hashed and hash_file(file) != entry.digest:
            raise IntegrityError(
                f"model file {entry.path!r} does not match its recorded digest", hint=_HINT
            )
    skip = set(exclude)
    for file in root.rglob("*"):
        rel = file.relative_to(root).as_posix()
        if file.is_file() and rel not in recorded and rel not in skip:
            raise IntegrityError(
                f"model file {rel!r} is not among the files the model recorded",
                hint="remove it: a model folder holds only the files it was saved with",
            )

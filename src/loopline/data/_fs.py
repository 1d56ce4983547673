"""Low-level file moves: reflinks, in-kernel copies, and copying while hashing.

Large files are copied by the kernel (``copy_file_range``, or a reflink where the
file system shares extents) in chunks while a second thread hashes the chunks
already written, read back from the destination: the digest is always that of
the bytes stored, and copying and hashing overlap, so one pass over the data
costs about one read. Small files are read whole, hashed and written in one go.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import blake3

from loopline.errors import InvalidArgumentError, LooplineError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CHUNK",
    "SMALL",
    "Cancelled",
    "ChangedWhileReadingError",
    "copy_hashed",
    "hash_bytes",
    "hash_path",
    "read_exact",
    "reflink",
]

SMALL = 1 << 20
"""Files up to this size are read into memory whole."""
CHUNK = 64 << 20
"""Large files are copied and hashed in chunks of this size."""
FICLONE = 0x40049409
_NO_RANGE_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}

Cancelled = threading.Event
"""A flag long operations check between chunks; set it to stop them."""


class ChangedWhileReadingError(InvalidArgumentError):
    """A file changed (size or content) while it was being read."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} changed while it was being read",
            hint="retry once nothing writes to it any more",
        )


def hash_bytes(data: bytes | memoryview) -> str:
    """The blake3 hex digest of a buffer.

    >>> hash_bytes(b"abc")[:16]
    '6437b3ac38465133'
    """
    return blake3.blake3(data).hexdigest()


def _threads_for(size: int) -> int:
    return int(blake3.blake3.AUTO) if size >= 4 * SMALL else 1


def hash_path(path: str, size: int) -> str:
    """The blake3 hex digest of a file (memory-mapped and multithreaded when large)."""
    if size <= SMALL:
        return hash_bytes(read_exact(path, size))
    hasher = blake3.blake3(max_threads=_threads_for(size))
    try:
        hasher.update_mmap(path)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    return hasher.hexdigest()


def _unreadable(path: str, exc: OSError) -> LooplineError:
    return InvalidArgumentError(
        f"cannot read {path}: {exc.strerror or exc}",
        hint="check that the file exists and that you may read it",
    )


def read_exact(path: str, size: int) -> bytes:
    """A small file's content; it must still be ``size`` bytes long."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        data = os.read(fd, size + 1)
        while len(data) < size:  # short reads happen on some file systems
            more = os.read(fd, size + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        os.close(fd)
    if len(data) != size:
        raise ChangedWhileReadingError(path)
    return data


def reflink(src_fd: int, dst_fd: int) -> bool:
    """Share the source's extents with the destination (btrfs, XFS...); False where unsupported."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError:
        return False
    return True


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    """Copy ``count`` bytes at ``offset`` from one file to the other; the bytes copied."""
    done = 0
    while done < count:
        try:
            n = os.copy_file_range(src_fd, dst_fd, count - done, offset + done, offset + done)
        except OSError as exc:
            if exc.errno not in _NO_RANGE_COPY:
                raise
            return done + _copy_range_userspace(src_fd, dst_fd, offset + done, count - done)
        if n == 0:
            break  # the source is shorter than it was
        done += n
    return done


def _copy_range_userspace(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
    done = 0
    while done < count:
        data = os.pread(src_fd, min(count - done, 8 << 20), offset + done)
        if not data:
            break
        written = 0
        while written < len(data):
            written += os.pwrite(dst_fd, data[written:], offset + done + written)
        done += len(data)
    return done


def copy_hashed(
    src_fd: int,
    dst_fd: int,
    size: int,
    *,
    name: str,
    cancel: Cancelled | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[str, bool]:
    """Copy ``size`` bytes from ``src_fd`` to ``dst_fd`` (opened read-write).

    Returns the digest of the copy and whether it is a reflink (shared extents).

    The destination is hashed from its own pages, chunk by chunk behind the copy.
    ``name`` names the source in errors; ``cancel`` stops the copy between chunks
    (raising KeyboardInterrupt); ``on_bytes`` hears of every chunk hashed.
    """
    hasher = blake3.blake3(max_threads=_threads_for(size))
    if size == 0:
        if os.fstat(src_fd).st_size != 0:
            raise ChangedWhileReadingError(name)
        return hasher.hexdigest(), False
    cloned = reflink(src_fd, dst_fd)
    if cloned and os.fstat(dst_fd).st_size != size:
        raise ChangedWhileReadingError(name)
    if not cloned:
        os.ftruncate(dst_fd, size)
    view = mmap.mmap(dst_fd, size, prot=mmap.PROT_READ)
    with contextlib.suppress(AttributeError, OSError):
        view.madvise(mmap.MADV_SEQUENTIAL)
    try:
        _pipeline(src_fd, dst_fd, view, size, hasher, cloned, name, cancel, on_bytes)
    finally:
        view.close()
    return hasher.hexdigest(), cloned


def _pipeline(
    src_fd: int,
    dst_fd: int,
    view: mmap.mmap,
    size: int,
    hasher: blake3.blake3,
    cloned: bool,
    name: str,
    cancel: Cancelled | None,
    on_bytes: Callable[[int], None] | None,
) -> None:
    chunks = [(off, min(CHUNK, size - off)) for off in range(0, size, CHUNK)]

    def copy(chunk: tuple[int, int]) -> None:
        if _copy_range(src_fd, dst_fd, *chunk) != chunk[1]:
            raise ChangedWhileReadingError(name)

    with memoryview(view) as data:
        if cloned:  # nothing to copy: hash the shared extents
            for off, count in chunks:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt
                hasher.update(data[off : off + count])
                if on_bytes is not None:
                    on_bytes(count)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="loopline-copy") as pool:
            pending: Future[None] = pool.submit(copy, chunks[0])
            try:
                for i, (off, count) in enumerate(chunks):
                    pending.result()
                    if cancel is not None and cancel.is_set():
                        raise KeyboardInterrupt
                    if i + 1 < len(chunks):
                        pending = pool.submit(copy, chunks[i + 1])
                    hasher.update(data[off : off + count])
                    if on_bytes is not None:
                        on_bytes(count)
            finally:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    pending.result()

"""Blob frames: many small blobs in one HTTP body, for batched upload and download.

Sending 20,000 files of a few KiB as 20,000 requests costs far more in round trips
and per-request work than in bytes, so small blobs travel in batches. The body of
a batch (media type :data:`MEDIA_TYPE`) is zero or more *frames* back to back::

    frame := "<algo>:<hex> <size>\\n" <size bytes of content>

The header line is ASCII, at most :data:`MAX_HEADER` bytes; ``size`` is decimal.
There is no body-level header, so either side can write frames as it reads blobs
and read them as they arrive, holding one frame at a time. The receiver verifies
each blob against its digest; the framing only says where one ends.

>>> body = frame_header("blake3:" + "ab" * 32, b"hello") + b"hello"
>>> body += frame_header("blake3:" + "cd" * 32, b"")
>>> reader = FrameReader(max_frame=1024)
>>> [(d[-4:], data) for d, data in reader.feed(body[:50])]
[]
>>> [(d[-4:], data) for d, data in reader.feed(body[50:])]
[('abab', b'hello'), ('cdcd', b'')]
>>> reader.finish()
>>> group(["a", "b", "c", "d"], {"a": 6, "b": 6, "c": 1, "d": 1}.__getitem__, 10, 3)
[['a'], ['b', 'c', 'd']]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["MAX_HEADER", "MEDIA_TYPE", "FrameReader", "frame_header", "group"]

MEDIA_TYPE = "application/vnd.loopline.blob-frames"
MAX_HEADER = 128
"""Longest header line accepted (a 64-hex digest, its algorithm and a size fit in 100)."""


def frame_header(digest: str, data: bytes) -> bytes:
    """The header line of one frame (the content follows it unchanged)."""
    return f"{digest} {len(data)}\n".encode("ascii")


class FrameReader:
    """Parses frames from chunks of a body as they arrive; holds at most one frame.

    A frame whose size exceeds ``max_frame``, a header that is not ``DIGEST SIZE``,
    or a body that ends inside a frame raises :class:`~loopline.errors.InvalidArgumentError`.
    """

    def __init__(self, *, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._want: tuple[str, int] | None = None  # the frame being read: digest, size

    def feed(self, chunk: bytes) -> Iterator[tuple[str, bytes]]:
        """The frames ``chunk`` completes: ``(digest text, content)`` pairs."""
        self._buffer += chunk
        while True:
            if self._want is None:
                end = self._buffer.find(b"\n", 0, MAX_HEADER + 1)
                if end < 0:
                    if len(self._buffer) > MAX_HEADER:
                        raise self._bad(f"a frame header longer than {MAX_HEADER} bytes")
                    return
                self._want = self._header(bytes(self._buffer[:end]))
                del self._buffer[: end + 1]
            digest, size = self._want
            if len(self._buffer) < size:
                return
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._want = None
            yield digest, data

    def _header(self, line: bytes) -> tuple[str, int]:
        digest, _, size = line.decode("ascii", "replace").partition(" ")
        if not digest or not size.isdigit():
            raise self._bad(f"a frame header {line[:MAX_HEADER]!r} that is not 'DIGEST SIZE'")
        if int(size) > self.max_frame:
            raise InvalidArgumentError(
                f"blob {digest} in the batch is {size} bytes; a batch takes blobs of at most "
                f"{self.max_frame} bytes",
                hint="send larger blobs alone: PUT /api/v1/data/blobs/{digest}",
            )
        return digest, int(size)

    def finish(self) -> None:
        """Check that the body ended between frames."""
        if self._want is not None or self._buffer:
            raise self._bad("a body that ends inside a frame")

    @staticmethod
    def _bad(what: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"the batch of blobs has {what}",
            hint="each frame is 'DIGEST SIZE\\n' followed by SIZE bytes (see loopline.data.frames)",
        )


def group(
    keys: Sequence[str], size: Callable[[str], int], max_bytes: int, max_count: int
) -> list[list[str]]:
    """``keys`` in order, cut into groups of at most ``max_count`` keys and ``max_bytes``
    bytes (a key larger than ``max_bytes`` alone)."""
    groups: list[list[str]] = []
    current: list[str] = []
    held = 0
    for key in keys:
        n = size(key)
        if current and (held + n > max_bytes or len(current) >= max_count):
            groups.append(current)
            current, held = [], 0
        current.append(key)
        held += n
    if current:
        groups.append(current)
    return groups

"""The prediction log's writer process: Arrow tables in on stdin, Parquet files out.

``python -m loopline.serving._logwriter '[ROOT, SOURCE, [HASHED COLUMN, ...]]'``

Each message on stdin is a frame: two little-endian 32-bit lengths (header, body),
a JSON header ``{"kind", "when"}`` and an Arrow IPC stream holding one table. Each
table becomes one Parquet file, written under a temporary name and renamed into
its day partition. At end of input (the server stopped, or was killed) the writer
exits; a frame cut short is dropped, so no partial file ever appears. Signals
meant for the server's process group (Ctrl-C, SIGTERM) are ignored: the writer
stops when the pipe closes, after writing everything it was sent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from loopline import predlog

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["frame", "main", "write_file"]

_HEAD = struct.Struct("<II")
TMP_PREFIX = ".tmp-"


def frame(table: Any, kind: predlog.Kind, when: datetime) -> bytes:
    """One message for the writer: ``table`` as an Arrow IPC stream behind a header."""
    import orjson
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body = sink.getvalue()
    header = orjson.dumps({"kind": kind, "when": when.timestamp()})
    return b"".join((_HEAD.pack(len(header), body.size), header, body.to_pybytes()))


def write_file(
    root: Path,
    source: str,
    table: Any,
    kind: predlog.Kind,
    when: datetime,
    hash_columns: tuple[str, ...] | list[str] = (),
) -> Path:
    """Write ``table`` as a new Parquet file of ``source``'s log (hashing those columns)."""
    import pyarrow.parquet as pq

    for name in hash_columns:
        column = predlog.INPUT_PREFIX + name
        if column in table.column_names:
            i = table.column_names.index(column)
            table = table.set_column(i, column, _hashed(table.column(i)))
    final = predlog.new_file_path(root, kind, source, when)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def _hashed(values: Any) -> Any:
    import blake3
    import pyarrow as pa

    return pa.array(
        [
            None if v is None else blake3.blake3(str(v).encode()).hexdigest()
            for v in values.to_pylist()
        ],
        pa.string(),
    )


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve_stream(stream: BinaryIO, root: Path, source: str, hash_columns: list[str]) -> int:
    """Write every complete frame of ``stream``; the number of files written."""
    import orjson
    import pyarrow as pa

    written = 0
    while True:
        head = _read_exactly(stream, _HEAD.size)
        if head is None:
            return written
        header_size, body_size = _HEAD.unpack(head)
        header = _read_exactly(stream, header_size)
        body = _read_exactly(stream, body_size) if header is not None else None
        if header is None or body is None:
            return written  # the server went away mid-frame: drop the partial table
        try:
            meta = orjson.loads(header)
            table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
            when = datetime.fromtimestamp(float(meta["when"]), UTC)
            write_file(root, source, table, meta["kind"], when, hash_columns)
            written += 1
        except Exception as exc:  # one bad table (a full disk...) must not stop the log
            print(f"loopline prediction log: {type(exc).__name__}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    import orjson

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    root, source, hash_columns = orjson.loads((argv or sys.argv[1:])[0])
    serve_stream(sys.stdin.buffer, Path(root), source, list(hash_columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())

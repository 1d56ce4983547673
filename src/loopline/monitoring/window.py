"""Windows of a deployment's prediction log, streamed batch by batch.

A window is a duration back from now (``1h``, ``30m``, ``7d``) or the latest N
rows (``5000rows``). Batches come from the files :mod:`loopline.predlog` lists,
read through pyarrow's scanner so a window of any length streams in bounded
memory; ``in.<feature>`` columns become ``<feature>`` and ``out.prediction``
becomes the monitor's prediction column.

>>> parse_window("1h"), parse_window("5000rows"), parse_window("90s")
(('ms', 3600000), ('rows', 5000), ('ms', 90000))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from loopline import predlog
from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd
    import pyarrow as pa

__all__ = ["WindowReader", "parse_window"]

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*rows?\s*$")
BATCH_ROWS = 65_536


def parse_window(text: str) -> tuple[Literal["ms", "rows"], int]:
    """A window: ``("ms", duration)`` or ``("rows", count)``."""
    if m := _ROWS.match(text.lower()):
        return "rows", int(m[1])
    if m := _DURATION.match(text.lower()):
        return "ms", int(float(m[1]) * _UNITS_MS[m[2]])
    raise InvalidArgumentError(
        f"{text!r} is not a window",
        hint="give a duration such as 30m, 1h, 7d, or a row count such as 5000rows",
    )


@dataclass(slots=True)
class WindowReader:
    """Reads one window of ``source``'s predictions as renamed pandas batches."""

    root: Path
    source: str
    window: str
    now: datetime
    prediction: str = "prediction"
    start: datetime | None = field(default=None, init=False)
    rows_seen: int = field(default=0, init=False)
    newest: datetime | None = field(default=None, init=False)
    oldest: datetime | None = field(default=None, init=False)

    def batches(self, keep: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
        """Feature batches; ``keep`` names raw columns kept as they are (``request_id``...)."""
        kind, amount = parse_window(self.window)
        if kind == "ms":
            self.start = self.now - timedelta(milliseconds=amount)
            yield from self._scan(self.start, self.now, keep)
        else:
            yield from self._latest(amount, keep)

    def _files(self, start: datetime | None, end: datetime | None) -> list[Path]:
        return predlog.list_files(self.root, "predictions", self.source, start, end)

    def _scan(
        self, start: datetime | None, end: datetime | None, keep: tuple[str, ...]
    ) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        ts = pa.timestamp("us", "UTC")
        low = pa.scalar(start.astimezone(UTC), ts) if start is not None else None
        high = pa.scalar(end.astimezone(UTC), ts) if end is not None else None
        # File by file, batch by batch (no read-ahead): peak memory stays a few batches
        # whatever the window's length; files with other columns are read as they are.
        for path in self._files(start, end):
            handle = pq.ParquetFile(path)
            names = handle.schema_arrow.names
            wanted = [n for n in names if self._wanted(n, keep) or n == "timestamp"]
            for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
                stamps = batch.column("timestamp").cast(ts)
                mask = None
                if low is not None:
                    mask = pc.greater_equal(stamps, low)
                if high is not None:
                    upper = pc.less(stamps, high)
                    mask = upper if mask is None else pc.and_(mask, upper)
                part = batch if mask is None else batch.filter(mask)
                if part.num_rows:
                    yield self._rename(part, keep)
            handle.close()

    def _latest(self, rows: int, keep: tuple[str, ...]) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Newest files first until enough rows; then read those files oldest first.
        chosen: list[Path] = []
        total = 0
        for path in reversed(self._files(None, self.now)):
            chosen.append(path)
            total += pq.ParquetFile(path).metadata.num_rows
            if total >= rows:
                break
        skip = max(total - rows, 0)
        for path in reversed(chosen):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                part = pa.Table.from_batches([batch]).slice(skip)
                skip = 0
                yield self._rename(part, keep)

    def _wanted(self, name: str, keep: tuple[str, ...]) -> bool:
        return name.startswith((predlog.INPUT_PREFIX, predlog.OUTPUT_PREFIX)) or name in keep

    def _rename(self, batch: pa.RecordBatch | pa.Table, keep: tuple[str, ...]) -> pd.DataFrame:
        import pyarrow.compute as pc

        self.rows_seen += batch.num_rows
        if "timestamp" in batch.schema.names and batch.num_rows:
            both = pc.min_max(batch.column("timestamp"))
            low, top = both["min"].as_py(), both["max"].as_py()
            if top is not None and (self.newest is None or top > self.newest):
                self.newest = top
            if low is not None and (self.oldest is None or low < self.oldest):
                self.oldest = low
        names = {}
        for name in batch.schema.names:
            if name.startswith(predlog.INPUT_PREFIX):
                names[name] = name[len(predlog.INPUT_PREFIX) :]
            elif name == f"{predlog.OUTPUT_PREFIX}prediction":
                names[name] = self.prediction
            elif name in keep or name.startswith(predlog.PROBA_PREFIX):
                names[name] = name
        table = batch.select(list(names))
        df: pd.DataFrame = table.to_pandas().rename(columns=names)
        return df

    def last_traffic(self) -> datetime | None:
        """The newest prediction's time in the whole log up to now (for freshness)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if self.newest is not None:
            return self.newest
        for path in reversed(self._files(None, self.now)):
            col = pq.read_table(path, columns=["timestamp"]).column("timestamp")
            if len(col):
                top: datetime | None = pc.max(col).as_py()
                return top
        return None

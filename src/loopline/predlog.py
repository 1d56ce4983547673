"""Where inference servers log predictions and ground truth, and how to read them back.

This module is the contract between serving (the writer) and monitoring (the reader).
Logs are Parquet files under :attr:`loopline.config.Settings.predictions_root`::

    <root>/predictions/<source>/date=YYYY-MM-DD/part-<unix_ms>-<uuid>.parquet
    <root>/feedback/<source>/date=YYYY-MM-DD/part-<unix_ms>-<uuid>.parquet

``<source>`` is the deployment name, or the model name for a bare ``loopline serve``.
Files appear only complete (written to a temporary name in the same folder, then
renamed), so a reader never sees half a file.

Prediction files carry these columns (one row per predicted row, not per request):

``request_id`` (string), ``timestamp`` (timestamp[us, UTC]), ``source`` (string),
``model_name`` (string), ``model_version`` (string), ``variant`` (string:
``primary``, ``canary`` or ``shadow``), ``latency_ms`` (float64), then one column
``in.<feature>`` per input feature (a column named ``in.petal.width`` is feature
``petal.width``), ``out.prediction`` for the model's output (``out.<name>`` for
named outputs) and, when the model gives class probabilities,
``out.proba.<class label>`` (float64). Columns a deployment excludes are absent;
hashed columns hold hex digests.

Feedback files carry ``request_id`` (string), ``timestamp`` (timestamp[us, UTC])
and ``label`` (the value the client sent: int64, float64, bool or string).
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

__all__ = [
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "PROBA_PREFIX",
    "Kind",
    "day_dir",
    "list_files",
    "new_file_path",
    "read_log",
    "source_dir",
]

Kind = Literal["predictions", "feedback"]
INPUT_PREFIX = "in."
OUTPUT_PREFIX = "out."
PROBA_PREFIX = "out.proba."
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def source_dir(root: Path, kind: Kind, source: str) -> Path:
    """The folder of one deployment's (or model's) log; the name is checked, never a path."""
    if not _SOURCE.match(source) or source in {".", ".."}:
        from loopline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"{source!r} cannot name a prediction log",
            hint="use letters, digits, '.', '_' and '-' (deployment and model names do)",
        )
    return root / kind / source


def day_dir(root: Path, kind: Kind, source: str, when: datetime) -> Path:
    """The partition folder of ``when``'s UTC day."""
    return source_dir(root, kind, source) / f"date={when.astimezone(UTC):%Y-%m-%d}"


def new_file_path(root: Path, kind: Kind, source: str, when: datetime | None = None) -> Path:
    """A fresh file name in the right partition (the caller writes a temp file, then renames)."""
    when = when or datetime.now(UTC)
    folder = day_dir(root, kind, source, when)
    return folder / f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}.parquet"


def list_files(
    root: Path,
    kind: Kind,
    source: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Path]:
    """Complete log files of ``source`` whose day partition overlaps [start, end], oldest first."""
    base = source_dir(root, kind, source)
    if not base.is_dir():
        return []
    first = start.astimezone(UTC).strftime("%Y-%m-%d") if start else None
    last = end.astimezone(UTC).strftime("%Y-%m-%d") if end else None
    files: list[Path] = []
    for day in sorted(base.iterdir()):
        match = _DAY.match(day.name)
        if match is None or (first and match[1] < first) or (last and match[1] > last):
            continue
        files.extend(sorted(day.glob("part-*.parquet")))
    return files


def read_log(
    root: Path,
    kind: Kind,
    source: str,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Rows of ``source``'s log with ``start <= timestamp < end``, as one Arrow table.

    Files written with different input columns (a model's features changed) are
    unified: a column missing from a file reads as nulls.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    files = list_files(root, kind, source, start, end)
    if not files:
        return pa.table({})
    flt = None
    if start is not None:
        flt = pc.field("timestamp") >= pa.scalar(start.astimezone(UTC), pa.timestamp("us", "UTC"))
    if end is not None:
        upper = pc.field("timestamp") < pa.scalar(end.astimezone(UTC), pa.timestamp("us", "UTC"))
        flt = upper if flt is None else flt & upper
    # "permissive": a label column written as int64 one second and float64 the next
    # reads as float64 rather than failing.
    schema = pa.unify_schemas(
        [ds.dataset(str(f), format="parquet").schema for f in files],
        promote_options="permissive",
    )
    dataset = ds.dataset([str(f) for f in files], format="parquet", schema=schema)
    return dataset.to_table(columns=columns, filter=flt)

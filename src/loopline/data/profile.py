"""Schemas and profiles of tabular files (CSV, TSV, Parquet), computed with pyarrow at add time.

A *schema* is the list of columns with their Arrow types. A *profile* describes
the values: the row count, and per column the share of missing values, and

- numbers: min, max, mean, standard deviation, quantiles (5, 25, 50, 75, 95 %)
  and a 10-bin histogram;
- text and categories: the number of distinct values and the most frequent ones;
- booleans: the counts of true and false; dates and times: min and max.

Monitoring uses a version's profile as the reference profile and validation
gates its schema as the expected one. pyarrow is imported only when a tabular
file is profiled.

>>> import pyarrow as pa
>>> p = profile_table(pa.table({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "a", "a"]}))
>>> p["rows"], p["columns"]["x"]["missing"], p["columns"]["x"]["max"]
(4, 0.25, 4.0)
>>> p["columns"]["c"]["top"]
[['a', 3], ['b', 1]]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FORMAT",
    "TABULAR_SUFFIXES",
    "profile_file",
    "profile_table",
    "read_table",
    "schema_of",
    "tabular_format",
]

FORMAT = "loopline.profile/1"
TABULAR_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_ENDINGS = tuple(TABULAR_SUFFIXES)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_CATEGORIES = 20
HISTOGRAM_BINS = 10
EXACT_QUANTILES_UP_TO = 1_000_000


def tabular_format(path: str) -> str | None:
    """``csv``, ``tsv`` or ``parquet`` from a file name's suffix, else None.

    >>> tabular_format("data/train.CSV"), tabular_format("a.parquet"), tabular_format("x.bin")
    ('csv', 'parquet', None)
    """
    tail = path[-8:].lower()  # the longest suffix, ".parquet", has 8 characters
    if not tail.endswith(_ENDINGS):
        return None
    return TABULAR_SUFFIXES[tail[tail.rfind(".") :]]


def read_table(source: Any, fmt: str) -> pa.Table:
    """Read a CSV/TSV/Parquet file (a path or a binary file object) into an Arrow table."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(source)
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    return pacsv.read_csv(source, parse_options=parse)


def schema_of(table: pa.Table) -> list[dict[str, str]]:
    """Column names and Arrow type names, in order."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def profile_file(source: Any, fmt: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(schema, profile) of one tabular file."""
    table = read_table(source, fmt)
    return schema_of(table), profile_table(table)


def profile_table(table: pa.Table) -> dict[str, Any]:
    """The profile of an Arrow table (JSON-ready: NaN becomes None)."""
    rows = table.num_rows
    columns = {name: _column(table.column(name), rows) for name in table.column_names}
    return {"format": FORMAT, "rows": rows, "columns": columns}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _column(column: pa.ChunkedArray, rows: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    info: dict[str, Any] = {
        "type": str(kind),
        "missing": (column.null_count / rows) if rows else 0.0,
    }
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        info["kind"] = "numeric"
        info.update(_numeric(column.cast(pa.float64())))
    elif pa.types.is_boolean(kind):
        info["kind"] = "boolean"
        info["true"] = int(pc.sum(column.cast(pa.int64())).as_py() or 0)
        info["false"] = rows - column.null_count - info["true"]
    elif pa.types.is_temporal(kind):
        info["kind"] = "temporal"
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        info["min"] = None if low is None else str(low)
        info["max"] = None if high is None else str(high)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        info["kind"] = "categorical"
        info.update(_categorical(column))
    else:
        info["kind"] = "other"
    return info


def _numeric(column: pa.ChunkedArray) -> dict[str, Any]:
    import numpy as np
    import pyarrow.compute as pc

    values = column.drop_null().to_numpy()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "quantiles": {}}
    if values.size <= EXACT_QUANTILES_UP_TO:
        qs = np.quantile(values, QUANTILES).tolist()
    else:
        qs = pc.tdigest(values, q=list(QUANTILES)).to_pylist()
    low, high = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
    return {
        "min": low,
        "max": high,
        "mean": _finite(float(values.mean())),
        "std": _finite(float(values.std())),
        "quantiles": {str(q): _finite(float(v)) for q, v in zip(QUANTILES, qs, strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _categorical(column: pa.ChunkedArray) -> dict[str, Any]:
    import pyarrow.compute as pc

    counts = pc.value_counts(column.drop_null())
    pairs = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda p: (-p[1], p[0]),
    )
    return {"distinct": len(pairs), "top": [[v, int(c)] for v, c in pairs[:TOP_CATEGORIES]]}

"""Reading tabular versions (CSV, TSV, Parquet) into pandas.

Files are read from the version's verified local copy (:attr:`DatasetVersion.path`)
with pyarrow. A folder of several tabular files with one schema (a partitioned
table) reads as their concatenation, in path order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.data.profile import read_table, tabular_format
from loopline.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from loopline.data.version import DatasetVersion

__all__ = ["to_pandas"]


def to_pandas(version: DatasetVersion, path: str | None = None) -> pd.DataFrame:
    """One tabular file of ``version`` (``path``), or all of them when they share a schema."""
    entries = version.manifest.entries
    if path is not None:
        chosen = [e for e in entries if e.path == path.strip("/")]
        if not chosen:
            raise NotFoundError(
                f"{version.ref} has no file {path!r}",
                hint=f"list its files with `loopline data ls {version.ref}`",
            )
    else:
        chosen = [e for e in entries if tabular_format(e.path) is not None]
    if not chosen:
        raise InvalidArgumentError(
            f"{version.ref} has no CSV, TSV or Parquet file",
            hint="read its files from .path instead",
        )
    fmt = tabular_format(chosen[0].path)
    if path is not None and fmt is None:
        raise InvalidArgumentError(f"{path!r} is not a CSV, TSV or Parquet file")
    root = version.path
    tables = [read_table(str(root / e.path), tabular_format(e.path) or "csv") for e in chosen]
    first = tables[0].schema
    for entry, table in zip(chosen[1:], tables[1:], strict=True):
        if not table.schema.equals(first):
            raise InvalidArgumentError(
                f"{version.ref}: {entry.path} has another schema than {chosen[0].path}, "
                "so they cannot be read as one table",
                hint="pick one file with to_pandas(path=...)",
            )
    import pyarrow as pa

    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    frame = table.to_pandas()
    # Autolog reads it to record which dataset version a model was trained on.
    frame.attrs["loopline.dataset"] = str(version.ref)
    return frame

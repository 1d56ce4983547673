"""Mergeable streaming profiles: what monitoring keeps of a table instead of its rows.

Per numeric column: the count, the missing and invalid counts (values that do not
parse as numbers), moments (mean and the sum of squared deviations, merged with
Chan's formula), min, max and counts on fixed bin edges. Per categorical column:
counts per category (at most :data:`MAX_CATEGORIES`, the rest counted as
``other``). A profile of a reference sets the edges (1,000 equal-mass cells at the
reference's quantiles, plus a cell below its minimum and one above its maximum);
profiles of current windows are counted on the reference's edges, so they merge
(windows, workers) and compare with it cell by cell.

Memory is bounded by the batch size plus the cells: a window of any length streams
through :meth:`ProfileBuilder.update` batch by batch.

>>> import pandas as pd
>>> ref = Profile.of(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "a"]}))
>>> b = ProfileBuilder(ref)
>>> b.update(pd.DataFrame({"x": [2.5, 9.0], "c": ["a", "z"]}))
>>> b.update(pd.DataFrame({"x": [None, 1.0], "c": ["b", "b"]}))
>>> cur = b.result()
>>> cur.rows, cur.columns["x"].missing, cur.columns["x"].overflow, cur.columns["c"].categories
(4, 1, 1, {'a': 1, 'z': 1, 'b': 2})
>>> both = cur.merge(cur)
>>> both.rows, round(both.columns["x"].mean, 4)
(8, 4.1667)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

    Floats = npt.NDArray[np.float64]

__all__ = [
    "BINS",
    "FORMAT",
    "MAX_CATEGORIES",
    "ColumnProfile",
    "Profile",
    "ProfileBuilder",
    "column_kind",
]

FORMAT = "loopline.monitoring.profile/1"
BINS = 1000
MAX_CATEGORIES = 10_000
OTHER = "__other__"
Kind = Literal["numeric", "categorical"]


def column_kind(dtype: Any) -> Kind:
    """``numeric`` for numbers (not booleans), else ``categorical``."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    return "numeric"


@dataclass(slots=True)
class ColumnProfile:
    """One column's profile (see the module docstring)."""

    kind: Kind
    count: int = 0
    missing: int = 0
    invalid: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    edges: list[float] | None = None
    cells: list[int] | None = None
    """Counts per cell: below ``edges[0]``, the ``len(edges) - 1`` bins, above ``edges[-1]``."""
    categories: dict[str, int] = field(default_factory=dict)
    other: int = 0

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    @property
    def underflow(self) -> int:
        return self.cells[0] if self.cells else 0

    @property
    def overflow(self) -> int:
        return self.cells[-1] if self.cells else 0

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if self.kind != other.kind or self.edges != other.edges:
            raise InvalidArgumentError(
                "these profiles cannot merge: they were counted on different bins",
                hint="profile every window against the same reference profile",
            )
        out = ColumnProfile(self.kind, edges=self.edges)
        out.count = self.count + other.count
        out.missing = self.missing + other.missing
        out.invalid = self.invalid + other.invalid
        _merge_moments(out, self, other)
        if self.cells is not None and other.cells is not None:
            out.cells = [a + b for a, b in zip(self.cells, other.cells, strict=True)]
        out.categories = dict(self.categories)
        out.other = self.other + other.other
        _add_categories(out, other.categories)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "count": self.count, "missing": self.missing}
        d["invalid"] = self.invalid
        if self.kind == "numeric":
            finite = self.n > 0
            d.update(
                n=self.n,
                mean=self.mean,
                m2=self.m2,
                min=self.min if finite else None,
                max=self.max if finite else None,
                edges=self.edges,
                cells=self.cells,
            )
        else:
            d.update(categories=self.categories, other=self.other)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        col = cls(d["kind"], count=d["count"], missing=d["missing"], invalid=d.get("invalid", 0))
        if col.kind == "numeric":
            col.n, col.mean, col.m2 = d["n"], d["mean"], d["m2"]
            col.min = math.inf if d["min"] is None else d["min"]
            col.max = -math.inf if d["max"] is None else d["max"]
            col.edges, col.cells = d["edges"], d["cells"]
        else:
            col.categories, col.other = dict(d["categories"]), d["other"]
        return col


def _merge_moments(out: ColumnProfile, a: ColumnProfile, b: ColumnProfile) -> None:
    out.n = a.n + b.n
    if out.n == 0:
        return
    delta = b.mean - a.mean
    out.mean = a.mean + delta * b.n / out.n
    out.m2 = a.m2 + b.m2 + delta * delta * a.n * b.n / out.n
    out.min, out.max = min(a.min, b.min), max(a.max, b.max)


def _add_categories(col: ColumnProfile, counts: dict[str, int]) -> None:
    cats = col.categories
    for key, value in counts.items():
        if key in cats:
            cats[key] += value
        elif len(cats) < MAX_CATEGORIES:
            cats[key] = value
        else:
            col.other += value


@dataclass(slots=True)
class Profile:
    """Profiles of a table's columns, with its row count."""

    rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame | pa.Table,
        *,
        kinds: dict[str, Kind] | None = None,
        bins: int = BINS,
    ) -> Profile:
        """A reference profile of a whole table: its own quantiles set the bin edges."""
        df = _to_pandas(frame)
        kinds = kinds or {}
        columns: dict[str, ColumnProfile] = {}
        for name in df.columns:
            kind = kinds.get(str(name)) or column_kind(df[name].dtype)
            col = ColumnProfile(kind)
            if kind == "numeric":
                values = _numbers(df[name], col)
                finite = values[~_isnan(values)]
                col.edges = _edges(finite, bins)
            columns[str(name)] = col
        builder = ProfileBuilder(cls(0, columns))
        builder.update(df)
        return builder.result()

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables together (same reference edges required)."""
        cols = dict(self.columns)
        for name, col in other.columns.items():
            cols[name] = cols[name].merge(col) if name in cols else col
        return Profile(self.rows + other.rows, cols)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        if d.get("format") != FORMAT:
            raise InvalidArgumentError(f"not a monitoring profile (format {d.get('format')!r})")
        return cls(d["rows"], {k: ColumnProfile.from_dict(v) for k, v in d["columns"].items()})


def _edges(finite: Floats, bins: int) -> list[float]:
    import numpy as np

    if finite.size == 0:
        return [0.0, 0.0]
    from loopline.monitoring.methods import quantiles

    qs = quantiles(np.sort(finite), np.arange(bins + 1) / bins)
    return [float(q) for q in qs]


def _isnan(values: Floats) -> npt.NDArray[np.bool_]:
    import numpy as np

    return ~np.isfinite(values)


def _to_pandas(frame: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):
        df: pd.DataFrame = frame.to_pandas()
        return df
    raise InvalidArgumentError(
        f"cannot profile a {type(frame).__name__}", hint="pass a pandas DataFrame or an Arrow table"
    )


def _numbers(series: pd.Series[Any], col: ColumnProfile) -> Floats:
    """The column as float64 (missing as NaN), counting values that are not numbers."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        out: Floats = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return out
    coerced = pd.to_numeric(series, errors="coerce")
    col.invalid += int((coerced.isna() & series.notna()).sum())
    converted: Floats = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    return converted


class ProfileBuilder:
    """Counts batches on a reference profile's columns and edges, in bounded memory."""

    def __init__(self, reference: Profile) -> None:
        self.reference = reference
        self.profile = Profile(
            0,
            {
                name: ColumnProfile(
                    ref.kind,
                    edges=ref.edges,
                    cells=[0] * (len(ref.edges) + 1) if ref.edges is not None else None,
                )
                for name, ref in reference.columns.items()
            },
        )
        self.extra_columns: set[str] = set()
        self.sent_columns: set[str] = set()
        """The reference's columns that some batch carried (the others were never sent)."""

    def update(self, batch: pd.DataFrame | pa.Table | pa.RecordBatch) -> None:
        """Add a batch's rows; columns the reference lacks are noted, not profiled."""
        df = _to_pandas(batch)
        rows = len(df)
        self.profile.rows += rows
        present = set(map(str, df.columns))
        self.extra_columns |= present - set(self.profile.columns)
        self.sent_columns |= present & set(self.profile.columns)
        for name, col in self.profile.columns.items():
            if name not in present:
                col.count += rows
                col.missing += rows
                continue
            if col.kind == "numeric":
                self._numeric(col, _numbers(df[name], col))
            else:
                self._categorical(col, df[name])

    @staticmethod
    def _numeric(col: ColumnProfile, values: Floats) -> None:
        import numpy as np

        col.count += len(values)
        finite = values[np.isfinite(values)]
        col.missing += len(values) - len(finite)
        if finite.size == 0:
            return
        part = ColumnProfile("numeric", n=len(finite), mean=float(finite.mean()))
        part.m2 = float(np.sum((finite - part.mean) ** 2))
        part.min, part.max = float(finite.min()), float(finite.max())
        merged = ColumnProfile("numeric")
        _merge_moments(merged, col, part)
        col.n, col.mean, col.m2, col.min, col.max = (
            merged.n,
            merged.mean,
            merged.m2,
            merged.min,
            merged.max,
        )
        assert col.edges is not None
        assert col.cells is not None
        edges = np.asarray(col.edges)
        idx = np.searchsorted(edges, finite, "right")
        idx[finite == edges[-1]] = len(edges) - 1  # the maximum closes the last bin
        counts = np.bincount(idx, minlength=len(edges) + 1)
        col.cells = [a + int(b) for a, b in zip(col.cells, counts, strict=True)]

    @staticmethod
    def _categorical(col: ColumnProfile, series: pd.Series[Any]) -> None:
        col.count += len(series)
        counts = series.value_counts(dropna=True)
        col.missing += len(series) - int(counts.sum())
        _add_categories(col, {str(k): int(v) for k, v in counts.items()})

    def result(self) -> Profile:
        return self.profile

"""Data drift between a reference and a current table: per column, then for the dataset.

Both sides may be DataFrames (tests run on the raw samples, exactly) or
:class:`~loopline.monitoring.profile.Profile` objects (tests run on histograms
counted on the reference's edges; see :mod:`loopline.monitoring.methods` for the
error bounds). The dataset drifts when the share of drifted features reaches
``drift_share``; the prediction column, when named, is tested the same way
(prediction drift) but does not count among the features.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> ref = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800)})
>>> cur = pd.DataFrame({"a": rng.normal(2.0, size=800), "b": rng.normal(size=800)})
>>> r = drift(ref, cur)
>>> [(c.column, c.method, c.drifted) for c in r.columns]
[('a', 'ks', True), ('b', 'ks', False)]
>>> r.drift_share, r.dataset_drift
(0.5, True)
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidArgumentError
from loopline.monitoring.methods import METHODS, Binned, Score, auto_method
from loopline.monitoring.profile import ColumnProfile, Profile, ProfileBuilder, column_kind

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from loopline.monitoring.profile import Kind

    Floats = npt.NDArray[np.float64]

__all__ = ["ColumnDrift", "DriftReport", "drift"]

Role = Literal["feature", "prediction", "target"]
DIST_BINS = 20


@dataclass(slots=True)
class ColumnDrift:
    """One column's test: which, its statistic, p-value or distance, threshold, verdict."""

    column: str
    kind: Kind
    role: Role
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    error_bound: float
    ref_rows: int
    cur_rows: int
    distribution: dict[str, Any] = field(default_factory=dict)
    """For display: numeric ``edges`` with ``ref`` and ``cur`` shares, or ``categories``."""

    @property
    def score(self) -> float:
        """The p-value of a test, else the distance (what the history charts)."""
        return self.statistic if self.p_value is None else self.p_value

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["statistic"] = _json_float(self.statistic)
        return d


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


@dataclass(slots=True)
class DriftReport:
    """Per-column results and the dataset's verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    share_threshold: float
    dataset_drift: bool
    ref_rows: int
    cur_rows: int
    exact: bool

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted and c.role == "feature"]

    @property
    def prediction(self) -> ColumnDrift | None:
        return next((c for c in self.columns if c.role == "prediction"), None)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        pred = self.prediction
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "drifted_columns": self.drifted_columns,
            "prediction_drift": None if pred is None else pred.drifted,
            "ref_rows": self.ref_rows,
            "cur_rows": self.cur_rows,
            "exact": self.exact,
            "columns": [c.to_dict() for c in self.columns],
        }


def drift(
    reference: pd.DataFrame | Profile,
    current: pd.DataFrame | Profile,
    *,
    columns: list[str] | None = None,
    methods: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
    kinds: dict[str, Kind] | None = None,
    drift_share: float = 0.5,
    prediction: str | None = None,
    target: str | None = None,
) -> DriftReport:
    """Test every shared column (or ``columns``) for drift, then the dataset.

    ``methods`` overrides the automatic test per column (a name of
    :data:`~loopline.monitoring.methods.METHODS`, or ``"*"`` for every column),
    ``thresholds`` its threshold, ``kinds`` whether a column is ``numeric`` or
    ``categorical``. The target column is left out of the features.
    """
    methods, thresholds, kinds = methods or {}, thresholds or {}, kinds or {}
    for name in {*methods.values()}:
        if name not in METHODS:
            raise InvalidArgumentError(
                f"unknown drift test {name!r}", hint=f"use one of {', '.join(sorted(METHODS))}"
            )
    ref_cols, cur_cols = _names(reference), _names(current)
    chosen = columns or [c for c in ref_cols if c in set(cur_cols)]
    missing = [c for c in chosen if c not in ref_cols or c not in cur_cols]
    if missing:
        raise InvalidArgumentError(
            f"columns {missing} are not in both tables",
            hint="compare tables with the same columns, or name the columns to test",
        )
    chosen = [c for c in chosen if c != target]

    def role(name: str) -> Role:
        return "prediction" if name == prediction else "feature"

    if isinstance(reference, Profile) or isinstance(current, Profile):
        ref_p, cur_p = _as_profiles(reference, current, kinds)
        results = [
            _binned_column(c, ref_p.columns[c], cur_p.columns[c], role(c), methods, thresholds)
            for c in chosen
        ]
        ref_rows, cur_rows, exact = ref_p.rows, cur_p.rows, False
    else:

        def run(name: str) -> ColumnDrift:
            assert not isinstance(reference, Profile)
            assert not isinstance(current, Profile)
            kind = kinds.get(name) or column_kind(reference[name].dtype)
            return _exact_column(
                name, kind, reference[name], current[name], role(name), methods, thresholds
            )

        # numpy's sorts release the GIL: two threads use both cores on wide tables.
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(run, chosen))
        ref_rows, cur_rows, exact = len(reference), len(current), True
    features = [c for c in results if c.role == "feature"]
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    return DriftReport(
        results, share, drift_share, bool(features) and share >= drift_share,
        ref_rows, cur_rows, exact,
    )  # fmt: skip


def _names(side: pd.DataFrame | Profile) -> list[str]:
    if isinstance(side, Profile):
        return list(side.columns)
    return [str(c) for c in side.columns]


def _as_profiles(
    reference: pd.DataFrame | Profile, current: pd.DataFrame | Profile, kinds: dict[str, Kind]
) -> tuple[Profile, Profile]:
    if not isinstance(reference, Profile):
        raise InvalidArgumentError(
            "a current profile needs a reference profile (it was counted on its bins)",
            hint="pass the reference profile, or both sides as DataFrames",
        )
    if isinstance(current, Profile):
        return reference, current
    builder = ProfileBuilder(reference)
    builder.update(current)
    return reference, builder.result()


def _pick(name: str, kind: Kind, n_ref: int, n_cur: int, methods: dict[str, str]) -> str:
    every = methods.get("*")
    if every is not None and kind not in METHODS[every].kinds:
        every = None
    return methods.get(name) or every or auto_method(kind, n_ref, n_cur)


def _result(
    name: str, kind: Kind, role: Role, score: Score, n_ref: int, n_cur: int, dist: dict[str, Any]
) -> ColumnDrift:
    return ColumnDrift(
        name, kind, role, score.method, score.statistic, score.p_value, score.threshold,
        score.drifted, score.error_bound, n_ref, n_cur, dist,
    )  # fmt: skip


def _empty(name: str, kind: Kind, role: Role, method: str, n_ref: int, n_cur: int) -> ColumnDrift:
    # Nothing to compare (a column entirely missing on one side): not a drift verdict;
    # data quality reports the missing values.
    m = METHODS[method]
    return ColumnDrift(
        name, kind, role, method, math.nan, None, m.threshold, False, 0.0, n_ref, n_cur
    )


# -- exact: raw samples ------------------------------------------------------------------
def _exact_column(
    name: str,
    kind: Kind,
    ref: pd.Series[Any],
    cur: pd.Series[Any],
    role: Role,
    methods: dict[str, str],
    thresholds: dict[str, float],
) -> ColumnDrift:
    import numpy as np

    if kind == "numeric":
        r = _finite(ref)
        c = _finite(cur)
        method = _pick(name, kind, len(r), len(c), methods)
        if not len(r) or not len(c):
            return _empty(name, kind, role, method, len(r), len(c))
        r.sort()
        c.sort()
        score = METHODS[method].exact(r, c, thresholds.get(name))
        return _result(name, kind, role, score, len(r), len(c), _numeric_dist(r, c))
    rc = ref.astype("string").value_counts(dropna=True)
    cc = cur.astype("string").value_counts(dropna=True)
    keys = list(dict.fromkeys([*map(str, rc.index), *map(str, cc.index)]))
    rv = np.array([float(rc.get(k, 0)) for k in keys])
    cv = np.array([float(cc.get(k, 0)) for k in keys])
    n_ref, n_cur = int(rv.sum()), int(cv.sum())
    method = _pick(name, kind, n_ref, n_cur, methods)
    if not n_ref or not n_cur:
        return _empty(name, kind, role, method, n_ref, n_cur)
    score = METHODS[method].counts(rv, cv, thresholds.get(name))
    return _result(name, kind, role, score, n_ref, n_cur, _categorical_dist(keys, rv, cv))


def _finite(series: pd.Series[Any]) -> Floats:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        values: Floats = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    out: Floats = values[np.isfinite(values)]
    return out


def _numeric_dist(r: Floats, c: Floats) -> dict[str, Any]:
    """Shares of both (sorted) samples on equal-width bins over their joint range."""
    import numpy as np

    low, high = min(r[0], c[0]), max(r[-1], c[-1])
    edges = np.linspace(low, high, DIST_BINS + 1) if high > low else np.array([low, low + 1.0])

    def shares(x: Floats) -> list[float]:
        pos = np.searchsorted(x, edges[1:-1], "left")
        counts = np.diff(np.concatenate([[0], pos, [len(x)]]))
        return [float(v) for v in counts / len(x)]

    return {"edges": [float(e) for e in edges], "ref": shares(r), "cur": shares(c)}


def _categorical_dist(keys: list[str], rv: Floats, cv: Floats, top: int = 20) -> dict[str, Any]:
    order = sorted(range(len(keys)), key=lambda i: -(rv[i] + cv[i]))[:top]
    rs, cs = rv.sum() or 1.0, cv.sum() or 1.0
    return {
        "categories": [keys[i] for i in order],
        "ref": [float(rv[i] / rs) for i in order],
        "cur": [float(cv[i] / cs) for i in order],
    }


# -- binned: profiles ----------------------------------------------------------------------
def _binned_column(
    name: str,
    ref: ColumnProfile,
    cur: ColumnProfile,
    role: Role,
    methods: dict[str, str],
    thresholds: dict[str, float],
) -> ColumnDrift:
    import numpy as np

    kind = ref.kind
    if kind == "numeric":
        assert ref.cells is not None
        assert cur.cells is not None
        assert ref.edges is not None
        rv, cv = np.asarray(ref.cells, dtype=np.float64), np.asarray(cur.cells, dtype=np.float64)
        n_ref, n_cur = ref.n, cur.n
        method = _pick(name, kind, n_ref, n_cur, methods)
        if not n_ref or not n_cur:
            return _empty(name, kind, role, method, n_ref, n_cur)
        inner = np.asarray(ref.edges)
        edges = np.concatenate([[min(ref.min, cur.min, inner[0])], inner,
                                [max(ref.max, cur.max, inner[-1])]])  # fmt: skip
        groups = _decile_groups(inner)
        b = Binned(rv, cv, edges, groups, ref.std)
        score = METHODS[method].binned(b, thresholds.get(name))
        return _result(name, kind, role, score, n_ref, n_cur, _binned_dist(edges, rv, cv))
    keys = list(dict.fromkeys([*ref.categories, *cur.categories]))
    rv = np.array([float(ref.categories.get(k, 0)) for k in keys] + [float(ref.other)])
    cv = np.array([float(cur.categories.get(k, 0)) for k in keys] + [float(cur.other)])
    if not ref.other and not cur.other:
        rv, cv = rv[:-1], cv[:-1]
    n_ref, n_cur = int(rv.sum()), int(cv.sum())
    method = _pick(name, kind, n_ref, n_cur, methods)
    if not n_ref or not n_cur:
        return _empty(name, kind, role, method, n_ref, n_cur)
    score = METHODS[method].counts(rv, cv, thresholds.get(name))
    return _result(name, kind, role, score, n_ref, n_cur, _categorical_dist(keys, rv, cv))


def _decile_groups(inner: Floats) -> npt.NDArray[np.intp]:
    """Each cell's reference decile (the cells of PSI and the other binned distances)."""
    import numpy as np

    bins = len(inner) - 1
    # Decile edges are the inner edges at positions bins/10, 2*bins/10, ... (quantiles j/10).
    marks = inner[[round(j * bins / 10) for j in range(1, 10)]]
    lefts = np.concatenate([[-np.inf], inner])  # left end of every cell (underflow first)
    return np.searchsorted(marks, lefts, "right").astype(np.intp)


def _binned_dist(edges: Floats, rv: Floats, cv: Floats) -> dict[str, Any]:
    """Cells grouped into about :data:`DIST_BINS` runs of equal reference mass, for display."""
    import numpy as np

    cells = len(rv)
    step = max(1, cells // DIST_BINS)
    starts = list(range(0, cells, step))
    rs, cs = rv.sum() or 1.0, cv.sum() or 1.0
    return {
        "edges": [float(edges[s]) for s in starts] + [float(edges[-1])],
        "ref": [float(np.sum(rv[s : s + step]) / rs) for s in starts],
        "cur": [float(np.sum(cv[s : s + step]) / cs) for s in starts],
    }

"""Drift tests: one :class:`Method` per test, each runnable on raw samples and most on histograms.

A method compares a reference sample with a current one and returns a
:class:`Score`: the statistic, the p-value (tests) or the distance itself
(distances), and whether it crossed its threshold. p-value tests flag drift when
``p < threshold``; distances when ``distance >= threshold``.

==================  ===========  =====================  ======================================
Name                Columns      Verdict from           On histograms (profiles)
==================  ===========  =====================  ======================================
``ks``              numeric      p-value (0.05)         statistic within ``error_bound`` (below)
``wasserstein``     numeric      distance / std (0.1)   within ``error_bound`` (below)
``psi``             both         distance (0.1)         exact (deciles of the reference)
``jensenshannon``   both         distance (0.1)         exact
``hellinger``       both         distance (0.1)         exact
``kl_div``          both         distance (0.1)         exact
``chisquare``       both         p-value (0.05)         exact (deciles on numbers)
``anderson``        numeric      p-value (0.05)         needs raw samples
``cramer_von_mises``  numeric    p-value (0.05)         needs raw samples
``mann_whitney``    numeric      p-value (0.05)         needs raw samples
==================  ===========  =====================  ======================================

The automatic choice follows the sample size: with at most 1,000 rows on either
side, Kolmogorov-Smirnov (numeric) and chi-square (categorical), whose p-values
are meaningful there; above, the normed Wasserstein distance and the
Jensen-Shannon distance, which do not flag every negligible shift a huge sample
makes "significant".

On histograms (a current window's profile against a reference profile, both
counted on the same bin edges), each numeric bin is a cell ``[e_i, e_i+1)``; the
empirical CDFs are known exactly at the edges only. Within a cell each CDF rises
by at most its cell's share ``r_i`` (reference) or ``c_i`` (current), so:

- KS: ``D_binned <= D_exact <= D_binned + max_i max(r_i, c_i)``;
- Wasserstein (interpolating linearly within cells, for a monotone CDF the area
  between it and the chord is at most half the cell's width times its rise):
  ``|W_binned - W_exact| <= sum_i w_i (r_i + c_i) / 2``, divided by the
  reference's standard deviation for the normed distance.

Each binned result carries that bound as ``error_bound``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = METHODS["ks"].exact(rng.normal(size=500), rng.normal(0.5, size=500))
>>> s.drifted, s.p_value < 1e-6
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

__all__ = [
    "METHODS",
    "SMALL_SAMPLE",
    "Binned",
    "Method",
    "Score",
    "auto_method",
]

SMALL_SAMPLE = 1000
"""At or below this many rows on either side, the automatic choice uses p-value tests."""
_EPS = 1e-4  # floor of a bin's share in PSI and KL (an empty bin would give infinity)
_STD_FLOOR = 1e-3

ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True, slots=True)
class Score:
    """A test's outcome on one column."""

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    error_bound: float = 0.0


@dataclass(frozen=True, slots=True)
class Binned:
    """Two distributions counted on the same cells (numeric cells or categories).

    ``ref`` and ``cur`` are counts per cell; for numeric columns ``edges`` bound
    the cells (``len(edges) == len(ref) + 1``, first and last cells may hold the
    values below the reference's minimum and above its maximum) and ``groups``
    maps each cell to its reference decile.
    """

    ref: Floats
    cur: Floats
    edges: Floats | None = None
    groups: npt.NDArray[np.intp] | None = None
    ref_std: float = 1.0


def _verdict_p(method: str, stat: float, p: float, thr: float, bound: float = 0.0) -> Score:
    return Score(method, float(stat), float(p), thr, bool(p < thr), bound)


def _verdict_d(method: str, dist: float, thr: float, bound: float = 0.0) -> Score:
    return Score(method, float(dist), None, thr, bool(dist >= thr), bound)


# -- helpers shared by the exact and binned forms -------------------------------------
def quantiles(ordered: Floats, qs: Floats) -> Floats:
    """Quantiles of a sorted sample, interpolated linearly (numpy's default method).

    Profiles and exact tests both take their cells from here, so a decile edge is
    the same number on both paths.

    >>> import numpy as np
    >>> quantiles(np.array([1.0, 2.0, 4.0]), np.array([0.0, 0.25, 1.0])).tolist()
    [1.0, 1.5, 4.0]
    """
    import numpy as np

    pos = qs * (len(ordered) - 1)
    low = np.floor(pos).astype(np.intp)
    high = np.minimum(low + 1, len(ordered) - 1)
    frac = pos - low
    out: Floats = ordered[low] + (ordered[high] - ordered[low]) * frac
    return out


def decile_edges(reference: Floats) -> Floats:
    """Inner decile edges of a sorted reference sample (the cells of PSI and friends on numbers)."""
    import numpy as np

    return quantiles(reference, np.arange(1, 10) * 100 / 1000)


def _shares(counts: Floats) -> Floats:
    total = counts.sum()
    return counts / total if total > 0 else counts


def _decile_counts(reference: Floats, current: Floats) -> tuple[Floats, Floats]:
    import numpy as np

    edges = decile_edges(np.sort(reference))
    ref = np.bincount(np.searchsorted(edges, reference, "right"), minlength=10)
    cur = np.bincount(np.searchsorted(edges, current, "right"), minlength=10)
    return ref.astype(np.float64), cur.astype(np.float64)


def _psi(ref: Floats, cur: Floats) -> float:
    import numpy as np

    r = np.clip(_shares(ref), _EPS, None)
    c = np.clip(_shares(cur), _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _kl(ref: Floats, cur: Floats) -> float:
    import numpy as np

    r = np.clip(_shares(ref), _EPS, None)
    c = np.clip(_shares(cur), _EPS, None)
    return float(np.sum(r * np.log(r / c)))


def _js(ref: Floats, cur: Floats) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(_shares(ref), _shares(cur)))


def _hellinger(ref: Floats, cur: Floats) -> float:
    import numpy as np

    return float(np.sqrt(0.5 * np.sum((np.sqrt(_shares(ref)) - np.sqrt(_shares(cur))) ** 2)))


def _grouped(b: Binned) -> tuple[Floats, Floats]:
    import numpy as np

    if b.groups is None:
        return b.ref, b.cur
    n = int(b.groups.max()) + 1
    return (
        np.bincount(b.groups, weights=b.ref, minlength=n).astype(np.float64),
        np.bincount(b.groups, weights=b.cur, minlength=n).astype(np.float64),
    )


def wasserstein_1d(u: Floats, v: Floats) -> float:
    """First Wasserstein distance between two samples (what ``scipy.stats.wasserstein_distance`` gives).

    One stable argsort of both samples together, then the area between the two
    empirical CDFs (a running sum of +1/n and -1/m weights).

    >>> import numpy as np
    >>> round(wasserstein_1d(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0])), 6)
    5.0
    """
    import numpy as np

    n, m = len(u), len(v)
    values = np.concatenate([u, v])
    steps = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    order = np.argsort(values, kind="stable")
    values = values[order]
    gap = np.cumsum(steps[order])
    return float(np.sum(np.abs(gap[:-1]) * np.diff(values)))


def _norm(reference: Floats) -> float:
    import numpy as np

    return max(float(np.std(reference)), _STD_FLOOR)


# -- binned KS and Wasserstein with their error bounds --------------------------------
def _cdfs(b: Binned) -> tuple[Floats, Floats, Floats, Floats]:
    import numpy as np

    r, c = _shares(b.ref), _shares(b.cur)
    fr = np.concatenate([[0.0], np.cumsum(r)])
    fc = np.concatenate([[0.0], np.cumsum(c)])
    return r, c, fr, fc


def binned_ks(b: Binned) -> tuple[float, float]:
    """(statistic at the edges, upper bound of the exact statistic)."""
    import numpy as np

    r, c, fr, fc = _cdfs(b)
    gap = np.abs(fr - fc)
    upper = np.max(gap[:-1] + np.maximum(r, c)) if len(r) else 0.0
    return float(gap.max()), float(max(upper, gap.max()))


def binned_wasserstein(b: Binned) -> tuple[float, float]:
    """(area between the piecewise-linear CDFs, bound of its distance to the exact one)."""
    import numpy as np

    assert b.edges is not None
    r, c, fr, fc = _cdfs(b)
    widths = np.diff(b.edges)
    lo, hi = (fr - fc)[:-1], (fr - fc)[1:]
    same = lo * hi >= 0
    mag = np.abs(lo) + np.abs(hi)
    area = np.where(
        same,
        widths * mag / 2,
        widths * (lo**2 + hi**2) / (2 * np.where(mag > 0, mag, 1.0)),
    )
    return float(area.sum()), float(np.sum(widths * (r + c)) / 2)


# -- the methods ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Method:
    """A drift test; ``exact`` runs on samples, ``binned`` (when set) on histograms."""

    name: str
    kinds: tuple[ColumnKind, ...]
    threshold: float
    uses_p_value: bool
    exact_fn: Callable[[Floats, Floats, float], Score]
    binned_fn: Callable[[Binned, float], Score] | None = None
    categorical_fn: Callable[[Floats, Floats, float], Score] | None = None

    def exact(self, reference: Floats, current: Floats, threshold: float | None = None) -> Score:
        """Run on two numeric samples (NaNs already dropped)."""
        return self.exact_fn(reference, current, self.threshold if threshold is None else threshold)

    def counts(self, ref: Floats, cur: Floats, threshold: float | None = None) -> Score:
        """Run on category counts aligned on the same categories."""
        fn = self.categorical_fn
        if fn is None:
            from loopline.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"drift test {self.name!r} does not apply to categorical columns",
                hint="use chisquare, jensenshannon, psi, hellinger or kl_div",
            )
        return fn(ref, cur, self.threshold if threshold is None else threshold)

    def binned(self, b: Binned, threshold: float | None = None) -> Score:
        """Run on histograms of two numeric columns counted on the same edges."""
        if self.binned_fn is None:
            from loopline.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"drift test {self.name!r} needs raw samples, not a profile",
                hint="compare DataFrames, or use ks, wasserstein, psi or jensenshannon",
            )
        return self.binned_fn(b, self.threshold if threshold is None else threshold)


def _ks_exact(u: Floats, v: Floats, thr: float) -> Score:
    from scipy.stats import ks_2samp

    res = ks_2samp(u, v)
    return _verdict_p("ks", res.statistic, res.pvalue, thr)


def _ks_binned(b: Binned, thr: float) -> Score:
    from scipy.stats import kstwobign

    low, high = binned_ks(b)
    n, m = float(b.ref.sum()), float(b.cur.sum())
    p = float(kstwobign.sf(low * math.sqrt(n * m / (n + m)))) if n and m else 1.0
    return _verdict_p("ks", low, p, thr, high - low)


def _wasserstein_exact(u: Floats, v: Floats, thr: float) -> Score:
    return _verdict_d("wasserstein", wasserstein_1d(u, v) / _norm(u), thr)


def _wasserstein_binned(b: Binned, thr: float) -> Score:
    dist, bound = binned_wasserstein(b)
    norm = max(b.ref_std, _STD_FLOOR)
    return _verdict_d("wasserstein", dist / norm, thr, bound / norm)


def _distance(
    name: str, fn: Callable[[Floats, Floats], float]
) -> tuple[
    Callable[[Floats, Floats, float], Score],
    Callable[[Binned, float], Score],
    Callable[[Floats, Floats, float], Score],
]:
    def exact(u: Floats, v: Floats, thr: float) -> Score:
        return _verdict_d(name, fn(*_decile_counts(u, v)), thr)

    def binned(b: Binned, thr: float) -> Score:
        return _verdict_d(name, fn(*_grouped(b)), thr)

    def counts(ref: Floats, cur: Floats, thr: float) -> Score:
        return _verdict_d(name, fn(ref, cur), thr)

    return exact, binned, counts


def _chisquare_counts(ref: Floats, cur: Floats, thr: float) -> Score:
    import numpy as np
    from scipy.stats import chisquare

    expected = _shares(ref) * cur.sum()
    if np.any((expected == 0) & (cur > 0)):
        # A category the reference never had: as far from it as can be.
        return _verdict_p("chisquare", math.inf, 0.0, thr)
    keep = expected > 0
    res = chisquare(cur[keep], expected[keep])
    return _verdict_p("chisquare", res.statistic, res.pvalue, thr)


def _chisquare_exact(u: Floats, v: Floats, thr: float) -> Score:
    return _chisquare_counts(*_decile_counts(u, v), thr)


def _chisquare_binned(b: Binned, thr: float) -> Score:
    return _chisquare_counts(*_grouped(b), thr)


def _scipy_p(name: str) -> Callable[[Floats, Floats, float], Score]:
    def run(u: Floats, v: Floats, thr: float) -> Score:
        import warnings

        from scipy import stats

        if name == "anderson":
            with warnings.catch_warnings():
                # scipy warns that p-values are capped to [0.001, 0.25]; the cap is fine here.
                warnings.simplefilter("ignore", UserWarning)
                res = stats.anderson_ksamp([u, v])
            return _verdict_p(name, res.statistic, res.pvalue, thr)
        if name == "cramer_von_mises":
            cvm = stats.cramervonmises_2samp(u, v)
            return _verdict_p(name, cvm.statistic, cvm.pvalue, thr)
        mw = stats.mannwhitneyu(u, v)
        return _verdict_p(name, mw.statistic, mw.pvalue, thr)

    return run


def _build() -> dict[str, Method]:
    both: tuple[ColumnKind, ...] = ("numeric", "categorical")
    found = {
        "ks": Method("ks", ("numeric",), 0.05, True, _ks_exact, _ks_binned),
        "wasserstein": Method(
            "wasserstein", ("numeric",), 0.1, False, _wasserstein_exact, _wasserstein_binned
        ),
        "chisquare": Method(
            "chisquare", both, 0.05, True, _chisquare_exact, _chisquare_binned, _chisquare_counts
        ),
    }
    for name, fn in (
        ("psi", _psi),
        ("jensenshannon", _js),
        ("hellinger", _hellinger),
        ("kl_div", _kl),
    ):
        exact, binned, counts = _distance(name, fn)
        found[name] = Method(name, both, 0.1, False, exact, binned, counts)
    for name in ("anderson", "cramer_von_mises", "mann_whitney"):
        found[name] = Method(name, ("numeric",), 0.05, True, _scipy_p(name))
    return found


METHODS: dict[str, Method] = _build()
"""Every drift test by name."""


def auto_method(kind: ColumnKind, ref_rows: int, cur_rows: int) -> str:
    """The test chosen for a column of this kind and these sample sizes.

    >>> auto_method("numeric", 500, 10_000), auto_method("numeric", 50_000, 10_000)
    ('ks', 'wasserstein')
    >>> auto_method("categorical", 500, 800), auto_method("categorical", 5_000, 8_000)
    ('chisquare', 'jensenshannon')
    """
    small = min(ref_rows, cur_rows) <= SMALL_SAMPLE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"

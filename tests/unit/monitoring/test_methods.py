"""Drift tests against scipy (exact runs to 1e-6) and the documented bounds on histograms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopline.errors import InvalidArgumentError
from loopline.monitoring import Profile, ProfileBuilder, drift
from loopline.monitoring.methods import METHODS, wasserstein_1d

RNG = np.random.default_rng(42)


@pytest.mark.parametrize(("n", "m", "shift"), [(50, 70, 0.0), (400, 900, 0.3), (3000, 2000, 0.05)])
def test_exact_tests_match_scipy(n: int, m: int, shift: float) -> None:
    u, v = RNG.normal(size=n), RNG.normal(shift, 1.3, size=m)
    ks = METHODS["ks"].exact(u, v)
    ref = stats.ks_2samp(u, v)
    assert ks.statistic == pytest.approx(ref.statistic, abs=1e-6)
    assert ks.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    assert ks.drifted == (ref.pvalue < 0.05)
    w = METHODS["wasserstein"].exact(u, v)
    assert w.statistic == pytest.approx(stats.wasserstein_distance(u, v) / np.std(u), abs=1e-6)
    assert wasserstein_1d(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-9)
    for name, fn in (
        ("cramer_von_mises", stats.cramervonmises_2samp),
        ("mann_whitney", stats.mannwhitneyu),
    ):
        got, want = METHODS[name].exact(u, v), fn(u, v)
        assert got.statistic == pytest.approx(want.statistic, abs=1e-6)
        assert got.p_value == pytest.approx(want.pvalue, abs=1e-6)


def test_categorical_tests_match_scipy() -> None:
    ref = np.array([120.0, 80.0, 40.0, 10.0])
    cur = np.array([100.0, 95.0, 30.0, 25.0])
    chi = METHODS["chisquare"].counts(ref, cur)
    want = stats.chisquare(cur, ref / ref.sum() * cur.sum())
    assert chi.statistic == pytest.approx(want.statistic, abs=1e-6)
    assert chi.p_value == pytest.approx(want.pvalue, abs=1e-6)
    js = METHODS["jensenshannon"].counts(ref, cur)
    assert js.statistic == pytest.approx(jensenshannon(ref / ref.sum(), cur / cur.sum()), abs=1e-6)
    psi = METHODS["psi"].counts(ref, cur)
    r, c = ref / ref.sum(), cur / cur.sum()
    assert psi.statistic == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=1e-6)
    # A category the reference never had is drift, however rare.
    assert METHODS["chisquare"].counts(np.array([10.0, 0.0]), np.array([10.0, 1.0])).drifted


def test_frames_pick_tests_by_size_and_take_overrides() -> None:
    small = pd.DataFrame({"x": RNG.normal(size=300), "c": RNG.choice(list("abc"), 300)})
    big = pd.DataFrame({"x": RNG.normal(size=5000), "c": RNG.choice(list("abc"), 5000)})
    assert [c.method for c in drift(small, small).columns] == ["ks", "chisquare"]
    assert [c.method for c in drift(big, big).columns] == ["wasserstein", "jensenshannon"]
    over = drift(big, big, methods={"x": "psi", "c": "psi"}, thresholds={"x": 0.2})
    assert [(c.method, c.threshold) for c in over.columns] == [("psi", 0.2), ("psi", 0.1)]
    with pytest.raises(InvalidArgumentError, match="unknown drift test"):
        drift(big, big, methods={"x": "t-test"})
    with pytest.raises(InvalidArgumentError, match="categorical"):
        drift(big, big, methods={"c": "ks"})


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5, 2.0])
def test_binned_ks_and_wasserstein_stay_within_their_bounds(shift: float) -> None:
    ref = pd.DataFrame({"x": RNG.lognormal(size=20_000)})
    cur = pd.DataFrame({"x": RNG.lognormal(shift, 1.1, size=15_000)})
    profile = Profile.of(ref)
    for name in ("ks", "wasserstein"):
        exact = drift(ref, cur, methods={"x": name}).column("x")
        binned = drift(profile, cur, methods={"x": name}).column("x")
        assert binned.error_bound > 0
        assert abs(exact.statistic - binned.statistic) <= binned.error_bound + 1e-12
    ks = drift(profile, cur, methods={"x": "ks"}).column("x")
    assert ks.error_bound <= 0.02  # 1,000 equal-mass reference cells


def test_binned_distances_equal_exact_ones() -> None:
    ref = pd.DataFrame({"x": RNG.normal(size=10_000), "c": RNG.choice(list("abcd"), 10_000)})
    cur = pd.DataFrame({"x": RNG.normal(0.2, size=7_000), "c": RNG.choice(list("abcde"), 7_000)})
    profile = Profile.of(ref)
    for name in ("psi", "jensenshannon", "hellinger", "kl_div", "chisquare"):
        exact = drift(ref, cur, methods={"*": name})
        binned = drift(profile, cur, methods={"*": name})
        for a, b in zip(exact.columns, binned.columns, strict=True):
            assert a.statistic == pytest.approx(b.statistic, abs=1e-9), (name, a.column)


def test_raw_only_tests_refuse_profiles() -> None:
    ref = pd.DataFrame({"x": RNG.normal(size=100)})
    with pytest.raises(InvalidArgumentError, match="raw samples"):
        drift(Profile.of(ref), ref, methods={"x": "anderson"})
    b = ProfileBuilder(Profile.of(ref))
    b.update(ref)
    with pytest.raises(InvalidArgumentError, match="reference profile"):
        drift(ref, b.result())

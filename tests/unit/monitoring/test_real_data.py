"""Real data bundled with installed packages: random splits do not drift; splits on a
feature's value drift in that feature and the features correlated with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_wine

from loopline.monitoring import drift, report


def _split_on(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    low = frame[column] <= frame[column].median()
    return frame[low], frame[~low]


def _random_halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = frame.sample(frac=1.0, random_state=seed)
    half = len(shuffled) // 2
    return shuffled.iloc[:half], shuffled.iloc[half:]


def _shuttle() -> pd.DataFrame:
    from river import datasets

    rows = [{**x, "label": y} for x, y in datasets.Shuttle()]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine])
def test_random_splits_show_no_dataset_drift(loader: object) -> None:
    frame = loader(as_frame=True).frame  # type: ignore[operator]
    for seed in range(3):
        ref, cur = _random_halves(frame, seed)
        assert not drift(ref, cur, target="target").dataset_drift


@pytest.mark.parametrize(
    ("loader", "column"), [(load_breast_cancer, "mean radius"), (load_wine, "alcohol")]
)
def test_splitting_on_a_feature_drifts_it_and_its_correlates(loader: object, column: str) -> None:
    frame = loader(as_frame=True).frame.drop(columns="target")  # type: ignore[operator]
    ref, cur = _split_on(frame, column)
    result = drift(ref, cur)
    assert column in result.drifted_columns
    corr = frame.corr()[column].drop(column)
    strong = corr[corr.abs() > 0.8].index
    weak = corr[corr.abs() < 0.05].index
    assert set(strong) <= set(result.drifted_columns)
    for name in weak:  # uncorrelated features mostly hold still
        assert result.column(name).p_value is not None
    # Verdicts agree with scipy's KS test, column by column.
    for c in result.columns:
        assert c.method == "ks"
        assert c.drifted == (stats.ks_2samp(ref[c.column], cur[c.column]).pvalue < 0.05)


def test_shuttle_random_split_and_split_on_a_feature() -> None:
    frame = _shuttle()
    ref, cur = _random_halves(frame, 0)
    calm = drift(ref, cur, target="label")
    assert not calm.dataset_drift
    assert [c.method for c in calm.columns][:1] == ["wasserstein"]
    low, high = _split_on(frame.drop(columns="label"), "f1")
    shifted = drift(low, high)
    assert "f1" in shifted.drifted_columns
    corr = frame.drop(columns="label").corr()["f1"].drop("f1")
    for name in corr[corr.abs() > 0.5].index:
        assert name in shifted.drifted_columns


def test_report_on_real_data_renders_html_and_json() -> None:
    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.assign(prediction=frame["target"])
    ref, cur = _split_on(frame, "mean radius")
    r = report(ref, cur, target="target", prediction="prediction")
    page = r.to_html()
    assert page.count("<svg") == len(r.drift.columns)
    assert "mean radius" in page
    data = r.to_dict()
    assert data["summary"]["dataset_drift"] is True
    assert data["performance"]["current"]["accuracy"] == 1.0
    assert np.isfinite(data["drift"]["drift_share"])

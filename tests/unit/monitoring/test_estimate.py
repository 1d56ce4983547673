"""CBPE over a window as monitor runs use it: multi-class models, windows that mix model
versions, probabilities named as serving logs them, the realised quality beside it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.errors import InvalidArgumentError
from loopline.monitoring.estimate import Calibration, WindowEstimate, calibrate, realised

WINE = load_wine()


def _split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(WINE.target))
    return order[:60], order[60:120], order[120:]


def _fit(rows: np.ndarray, c: float) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(
        WINE.data[rows], WINE.target[rows]
    )


def _logged(model: Any, rows: np.ndarray, version: str) -> pd.DataFrame:
    """The window as serving logs it: out.proba.<class> per class, with the version."""
    proba = model.predict_proba(WINE.data[rows])
    frame = pd.DataFrame({f"out.proba.{c}": proba[:, i] for i, c in enumerate([0, 1, 2])})
    return frame.assign(
        model_name="wine",
        model_version=version,
        variant="primary",
        prediction=model.predict(WINE.data[rows]),
    )


def test_a_multiclass_estimate_tracks_the_realised_accuracy() -> None:
    train, ref, cur = _split(0)
    model = _fit(train, 0.05)
    proba = model.predict_proba(WINE.data[ref])
    cal = calibrate(proba, WINE.target[ref], [0, 1, 2], model="models:/wine/1")
    assert cal.positive is None
    assert set(cal.reference) == {"accuracy"}
    again = Calibration.from_dict(cal.to_dict())
    window = WindowEstimate(lambda name, version: again if version == "1" else None)
    frame = _logged(model, cur, "1")
    for part in np.array_split(np.arange(len(frame)), 3):  # batch by batch
        window.update(frame.iloc[part])
    est = window.result()
    assert est is not None
    assert est["rows"] == len(cur)
    done = realised(est, WINE.target[cur], frame["prediction"])
    real = float(np.mean(frame["prediction"].to_numpy() == WINE.target[cur]))
    assert done["realised"]["accuracy"] == pytest.approx(real)
    assert abs(done["error"]["accuracy"]) < 0.1
    # Late labels give an earlier window every metric, not only the estimated ones;
    # the error compares what was estimated.
    matrix = model.predict_proba(WINE.data[cur])
    with_proba = realised(est, WINE.target[cur], frame["prediction"], matrix, [0, 1, 2])
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(with_proba["realised"])
    assert set(with_proba["error"]) == {"accuracy"}


def test_versions_in_one_window_are_each_calibrated_by_their_own_model() -> None:
    train, ref, cur = _split(1)
    models = {"1": _fit(train, 0.05), "2": _fit(train, 5.0)}
    cals = {
        v: calibrate(
            m.predict_proba(WINE.data[ref]),
            WINE.target[ref],
            [0, 1, 2],
            model=f"models:/wine/{v}",
        )
        for v, m in models.items()
    }
    asked: list[tuple[str, str]] = []

    def lookup(name: str, version: str) -> Calibration | None:
        asked.append((name, version))
        return cals.get(version)

    window = WindowEstimate(lookup)
    half = len(cur) // 2
    window.update(
        pd.concat(
            [
                _logged(models["1"], cur[:half], "1"),
                _logged(models["2"], cur[half:], "2"),
                _logged(models["2"], cur[:10], "3"),
            ]
        )
    )
    est = window.result()
    assert est is not None
    assert est["models"] == ["models:/wine/1", "models:/wine/2"]
    assert est["rows"] == len(cur)  # version 3 has no calibration: left out
    assert window.skipped == 10
    assert sorted(asked) == [("wine", "1"), ("wine", "2"), ("wine", "3")]  # once each
    by_rows = (
        half * cals["1"].reference["accuracy"] + (len(cur) - half) * cals["2"].reference["accuracy"]
    ) / len(cur)
    assert est["reference"]["accuracy"] == pytest.approx(by_rows)


def test_shadow_rows_and_windows_without_probabilities() -> None:
    train, ref, cur = _split(2)
    model = _fit(train, 0.05)
    cal = calibrate(model.predict_proba(WINE.data[ref]), WINE.target[ref], [0, 1, 2], model="m")
    window = WindowEstimate(lambda name, version: cal)
    window.update(_logged(model, cur, "1").assign(variant="shadow"))
    window.update(pd.DataFrame({"x": [1.0], "model_name": "wine", "model_version": "1"}))
    assert window.result() is None
    with pytest.raises(InvalidArgumentError):
        calibrate(np.ones((3, 2)), [0, 1, 2], [0, 1, 2], model="m")

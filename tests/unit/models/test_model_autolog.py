"""autolog(): training code unchanged, params, metrics, model and dataset logged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import loopline
from loopline.models import autolog, load
from loopline.models.autologging import disable, patched

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

pytestmark = pytest.mark.usefixtures("sdk")
Data = tuple["pd.DataFrame", "pd.Series"]


def _run(run_id: str) -> Any:
    loopline.flush()
    return loopline.get_run(run_id)


def _artifacts(run_id: str, path: str = "") -> set[str]:
    return {a.path for a in loopline.get_client().list_artifacts(run_id, path)}


def test_sklearn_fit_logs_params_training_metrics_and_the_model(cancer: Data) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = cancer
    autolog()
    with loopline.start_run() as run:
        model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(x, y)
    data = _run(run.info.run_id).data
    assert data.params["n_estimators"] == "15"
    assert data.params["max_depth"] == "4"
    for key in ("training_accuracy", "training_f1", "training_log_loss", "training_roc_auc"):
        assert 0.0 <= data.metrics[key] <= 1.0 or key == "training_log_loss", key
    assert data.metrics["training_accuracy"] > 0.9
    loaded = load(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.input_example is not None
    assert len(loaded.input_example) == 5
    assert loaded.metadata.run is not None
    assert loaded.metadata.run.metrics["training_accuracy"] == data.metrics["training_accuracy"]


def test_fit_without_an_active_run_gets_its_own_finished_run(diabetes: Data) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes
    autolog(log_models=False)
    Ridge(alpha=0.5).fit(x, y)
    assert loopline.active_run() is None
    last = loopline.last_active_run()
    assert last is not None
    assert last.info.status == "FINISHED"
    assert last.data.params["alpha"] == "0.5"
    assert {"training_mse", "training_rmse", "training_mae", "training_r2"} <= set(
        last.data.metrics
    )
    assert "model" not in _artifacts(last.info.run_id)


def test_a_failing_fit_marks_its_run_failed(diabetes: Data) -> None:
    from sklearn.linear_model import Ridge

    autolog()
    with pytest.raises(ValueError):  # noqa: PT011 - scikit-learn's own message
        Ridge().fit([[1.0], [2.0]], [1.0])
    last = loopline.last_active_run()
    assert last is not None
    assert last.info.status == "FAILED"


def test_a_pipeline_logs_once_not_once_per_step(wine: Data) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = wine
    autolog()
    with loopline.start_run() as run:
        make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    params = _run(run.info.run_id).data.params
    assert params["logisticregression__C"] == "1.0"
    assert _artifacts(run.info.run_id) == {"model"}
    runs = loopline.search_runs(output_format="list")
    assert len(runs) == 1


def test_autolog_is_idempotent_and_disable_restores_fit() -> None:
    from sklearn.linear_model import LinearRegression

    original = LinearRegression.fit
    assert "sklearn" in autolog()
    count = len(patched())
    autolog()
    assert len(patched()) == count
    assert LinearRegression.fit is not original
    assert LinearRegression.fit.__name__ == "fit"
    assert disable() == count
    assert LinearRegression.fit is original
    assert patched() == []
    assert autolog(disable=True) == []


def test_the_dataset_version_a_frame_came_from_is_recorded(tmp_path: Path, cancer: Data) -> None:
    from sklearn.tree import DecisionTreeClassifier

    import loopline.data

    x, y = cancer
    csv = tmp_path / "cancer.csv"
    x.assign(target=y).to_csv(csv, index=False)
    loopline.data.add(csv, "cancer")
    frame = loopline.data.get("cancer@1").to_pandas()  # read before any run is active
    assert frame.attrs["loopline.dataset"] == "cancer@1"
    autolog()
    with loopline.start_run() as run:
        DecisionTreeClassifier(max_depth=3).fit(frame.drop(columns="target"), frame["target"])
    lineage = loopline.data.lineage(run_id=run.info.run_id)
    assert lineage.datasets == [("cancer@1", "training")]
    model = load(f"runs:/{run.info.run_id}/model")
    assert model.metadata.run is not None
    assert model.metadata.run.datasets == [{"ref": "cancer@1", "context": "training"}]


def test_logging_failures_never_break_training(
    cancer: Data, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from loopline.models import log as log_module

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(log_module, "log_model", broken)
    x, y = cancer
    autolog()
    with loopline.start_run():
        model = DecisionTreeClassifier(max_depth=2).fit(x, y)
    assert hasattr(model, "tree_")
    assert "could not log the model: store unavailable" in caplog.text


def test_xgboost_logs_every_iteration(wine: Data) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = wine
    autolog()
    with loopline.start_run() as run:
        clf = xgb.XGBClassifier(n_estimators=12, max_depth=2, eval_metric="mlogloss")
        clf.fit(x, y, eval_set=[(x, y)], verbose=False)
    history = loopline.get_metric_history(run.info.run_id, "validation_0-mlogloss")
    assert [m.step for m in history] == list(range(12))
    assert history[-1].value < history[0].value
    data = _run(run.info.run_id).data
    assert data.params["n_estimators"] == "12"
    assert data.metrics["training_accuracy"] > 0.9
    loaded = load(f"runs:/{run.info.run_id}/model")
    assert loaded.flavor == "xgboost"
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))

    with loopline.start_run() as run:
        dtrain = xgb.DMatrix(x, label=y)
        xgb.train(
            {"objective": "multi:softprob", "num_class": 3}, dtrain, 5, evals=[(dtrain, "train")]
        )
    assert len(loopline.get_metric_history(run.info.run_id, "train-mlogloss")) == 5
    assert _run(run.info.run_id).data.params["num_boost_round"] == "5"
    assert "model" in _artifacts(run.info.run_id)


def test_lightgbm_logs_every_iteration(diabetes: Data) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = diabetes
    autolog()
    import inspect

    fit_params = inspect.signature(lgb.LGBMRegressor.fit).parameters
    evals = {"eval_X": (x,), "eval_y": (y,)} if "eval_X" in fit_params else {"eval_set": [(x, y)]}
    with loopline.start_run() as run:
        reg = lgb.LGBMRegressor(n_estimators=8, verbose=-1).fit(x, y, **evals)
    history = loopline.get_metric_history(run.info.run_id, "training-l2")
    assert [m.step for m in history] == list(range(8))
    loaded = load(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(x), reg.predict(x))

    with loopline.start_run() as run:
        train = lgb.Dataset(x, y)
        lgb.train({"verbose": -1}, train, 6, valid_sets=[train], valid_names=["fit"])
    assert len(loopline.get_metric_history(run.info.run_id, "fit-l2")) == 6
    assert load(f"runs:/{run.info.run_id}/model").flavor == "lightgbm"

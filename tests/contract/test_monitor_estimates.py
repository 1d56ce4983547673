"""Quality before labels in monitor runs, on every metadata backend: CBPE on the logged
probabilities, calibrated on a reference that carries the model's probabilities; the
realised quality recorded beside the estimate once labels arrive; row-count anomalies
against earlier windows; freshness limits both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.data.add import add
from loopline.data.service import DataService
from loopline.errors import InvalidArgumentError
from loopline.monitoring.service import MonitorService
from loopline.monitoring.simulate import write_feedback, write_predictions
from loopline.store.blobs import open_blob_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd

    from loopline.store.metadata import Database

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cancer() -> dict[str, Any]:
    """A classifier fitted on a third of the data; the rest split into reference and traffic."""
    data = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = data.frame
    order = np.random.default_rng(3).permutation(len(frame))
    train, ref, cur = order[:190], order[190:380], order[380:]
    X, y = frame.drop(columns="target"), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(
        X.iloc[train], y.iloc[train]
    )
    return {"X": X, "y": y, "model": model, "ref": ref, "cur": cur}


@pytest.fixture
def service(db: Database, tmp_path: Path, cancer: dict[str, Any]) -> Iterator[MonitorService]:
    blobs = open_blob_store(str(tmp_path / "blobs"))

    def data() -> DataService:
        return DataService.over(db, blobs, user="tester", project="default")

    svc = MonitorService(db, data, tmp_path / "predictions", user="tester", webhook_backoff=0.01)
    X, y, model = cancer["X"].iloc[cancer["ref"]], cancer["y"].iloc[cancer["ref"]], cancer["model"]
    proba = model.predict_proba(X)
    # The reference as `loopline predict` scores it: features, label, prediction, proba_<class>.
    reference = X.assign(target=y, prediction=model.predict(X),
                         proba_0=proba[:, 0], proba_1=proba[:, 1])  # fmt: skip
    reference.to_csv(tmp_path / "reference.csv", index=False)
    add(svc.data, tmp_path / "reference.csv", "cancer")
    yield svc
    svc.close()


def _serve(svc: MonitorService, cancer: dict[str, Any], rows: Any, when: datetime) -> list[str]:
    """Log the model's answers to ``rows`` as an inference server would; returns request ids."""
    X = cancer["X"].iloc[rows]
    proba = cancer["model"].predict_proba(X)
    return write_predictions(svc.predictions_root, "cancer-clf", X,
                             predictions=cancer["model"].predict(X).tolist(),
                             proba={"0": proba[:, 0].tolist(), "1": proba[:, 1].tolist()},
                             when=when, model="cancer", version="1")  # fmt: skip


def test_a_run_estimates_quality_then_records_the_realised_quality_once_labels_come(
    service: MonitorService, cancer: dict[str, Any]
) -> None:
    service.create("est", deployment="cancer-clf", reference="cancer@1", target="target",
                   window="1h")  # fmt: skip
    ids = _serve(service, cancer, cancer["cur"], NOW - timedelta(minutes=10))
    first = service.run("est", now=NOW)
    estimate = first["estimate"]
    assert estimate["method"] == "CBPE"
    assert estimate["rows"] == len(cancer["cur"])
    assert estimate["models"] == ["reference"]
    assert estimate["realised"] is None
    assert set(estimate["estimated"]) == {"accuracy", "f1", "roc_auc"}
    assert set(estimate["reference"]) == {"accuracy", "f1", "roc_auc"}
    assert first["performance"]["rows"] == 0  # no labels yet

    labels = cancer["y"].iloc[cancer["cur"]].tolist()
    write_feedback(
        service.predictions_root, "cancer-clf", ids, labels, when=NOW + timedelta(hours=2)
    )
    # A later run, whose window no longer holds those requests, reconciles the first.
    service.run("est", now=NOW + timedelta(hours=3))
    stored = {r["id"]: r for r in service.store.runs("est")}[first["run_id"]]["summary"]["estimate"]
    predicted = cancer["model"].predict(cancer["X"].iloc[cancer["cur"]])
    real_accuracy = float(np.mean(predicted == np.array(labels)))
    assert stored["labelled_rows"] == len(labels)
    assert stored["realised"]["accuracy"] == pytest.approx(real_accuracy)
    # The check the estimate exists for: close to what the labels say.
    assert abs(stored["error"]["accuracy"]) < 0.05
    assert abs(stored["error"]["f1"]) < 0.05
    assert abs(stored["error"]["roc_auc"]) < 0.03
    proba = cancer["model"].predict_proba(cancer["X"].iloc[cancer["cur"]])[:, 1]
    assert stored["realised"]["roc_auc"] == pytest.approx(roc_auc_score(labels, proba))
    # Realised metrics that were not estimated are kept too.
    assert stored["realised"]["log_loss"] == pytest.approx(log_loss(labels, proba))
    history = service.store.history("est", category="performance")
    by_metric = {(h["run_id"], h["metric"]): h for h in history}
    est_row = by_metric[(first["run_id"], "estimated.accuracy")]
    real_row = by_metric[(first["run_id"], "accuracy")]
    assert real_row["value"] == pytest.approx(real_accuracy)
    assert real_row["created_at"] == est_row["created_at"]  # one x for both lines of a chart


def test_late_labels_give_an_earlier_multiclass_window_its_roc_auc_and_log_loss(
    db: Database, tmp_path: Path
) -> None:
    wine = load_wine(as_frame=True)
    X, y = wine.data, wine.target
    order = np.random.default_rng(5).permutation(len(X))
    train, ref, cur = order[:60], order[60:120], order[120:]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(
        X.iloc[train], y.iloc[train]
    )
    blobs = open_blob_store(str(tmp_path / "blobs"))
    svc = MonitorService(db, lambda: DataService.over(db, blobs, user="t", project="default"),
                         tmp_path / "predictions", user="t")  # fmt: skip
    try:
        proba = model.predict_proba(X.iloc[ref])
        columns = {f"proba_{c}": proba[:, i] for i, c in enumerate(model.classes_)}
        X.iloc[ref].assign(target=y.iloc[ref], prediction=model.predict(X.iloc[ref]),
                           **columns).to_csv(tmp_path / "reference.csv", index=False)  # fmt: skip
        add(svc.data, tmp_path / "reference.csv", "wine")
        svc.create("mc", deployment="wine-clf", reference="wine@1", target="target", window="1h")
        served = model.predict_proba(X.iloc[cur])
        ids = write_predictions(svc.predictions_root, "wine-clf", X.iloc[cur],
                                predictions=model.predict(X.iloc[cur]).tolist(),
                                proba={str(c): served[:, i].tolist()
                                       for i, c in enumerate(model.classes_)},
                                when=NOW - timedelta(minutes=10), model="wine",
                                version="1")  # fmt: skip
        first = svc.run("mc", now=NOW)
        labels = y.iloc[cur].tolist()
        write_feedback(svc.predictions_root, "wine-clf", ids, labels, when=NOW + timedelta(hours=2))
        svc.run("mc", now=NOW + timedelta(hours=3))  # reconciles the first window
        runs = {r["id"]: r for r in svc.store.runs("mc")}
        stored = runs[first["run_id"]]["summary"]["estimate"]
        assert stored["labelled_rows"] == len(labels)
        assert stored["realised"]["roc_auc"] == pytest.approx(
            roc_auc_score(labels, served, multi_class="ovr")
        )
        assert stored["realised"]["log_loss"] == pytest.approx(log_loss(labels, served))
        assert set(stored["error"]) == {"accuracy"}  # what was estimated
    finally:
        svc.close()


def test_an_estimated_drop_alerts_before_any_label(
    service: MonitorService, cancer: dict[str, Any]
) -> None:
    service.create("est", deployment="cancer-clf", reference="cancer@1", target="target",
                   window="1h", config={"estimate_drop": 0.02})  # fmt: skip
    # Traffic the model is unsure about: the cases nearest its decision boundary.
    proba = cancer["model"].predict_proba(cancer["X"])[:, 1]
    unsure = np.argsort(np.abs(proba - 0.5))[:80]
    _serve(service, cancer, unsure, NOW - timedelta(minutes=5))
    result = service.run("est", now=NOW)
    estimate = result["estimate"]
    assert estimate["estimated"]["accuracy"] < estimate["reference"]["accuracy"] - 0.05
    found = [a for a in result["alerts"] if a["kind"] == "performance"]
    assert len(found) == 1
    assert found[0]["severity"] == "warning"
    assert "estimated" in found[0]["message"]


def test_shadow_answers_do_not_count(service: MonitorService, cancer: dict[str, Any]) -> None:
    service.create("est", deployment="cancer-clf", reference="cancer@1", target="target")
    X = cancer["X"].iloc[cancer["cur"][:50]]
    write_predictions(service.predictions_root, "cancer-clf", X, predictions=[0] * 50,
                      proba={"0": [0.5] * 50, "1": [0.5] * 50}, when=NOW - timedelta(minutes=1),
                      model="cancer", version="1", variant="shadow")  # fmt: skip
    _serve(service, cancer, cancer["cur"][:60], NOW - timedelta(minutes=2))
    assert service.run("est", now=NOW)["estimate"]["rows"] == 60


def test_row_count_anomalies_against_earlier_windows(
    service: MonitorService, cancer: dict[str, Any]
) -> None:
    service.create("rows", deployment="cancer-clf", reference="cancer@1", window="1h",
                   config={"row_ratio": 0.5, "row_min_runs": 3})  # fmt: skip
    for hour in range(4):
        _serve(service, cancer, cancer["cur"][:100], NOW + timedelta(hours=hour, minutes=-30))
        result = service.run("rows", now=NOW + timedelta(hours=hour))
        checks = [q for q in result["quality"] if q["check"] == "row_count"]
        # The first three windows build the history; the fourth is compared with it.
        assert len(checks) == (1 if hour == 3 else 0)
    assert not checks[0]["failed"]
    _serve(service, cancer, cancer["cur"][:20], NOW + timedelta(hours=4, minutes=-30))
    quiet = service.run("rows", now=NOW + timedelta(hours=4))
    row_check = next(q for q in quiet["quality"] if q["check"] == "row_count")
    assert row_check["failed"]
    assert (row_check["value"], row_check["threshold"]) == (20.0, 100.0)
    assert any(a["kind"] == "quality" and "20 rows" in a["message"] for a in quiet["alerts"])


def test_freshness_limits_both_ways(service: MonitorService, cancer: dict[str, Any]) -> None:
    hour = 3_600_000
    service.create("fresh", deployment="cancer-clf", reference="cancer@1", window="5000rows",
                   config={"max_traffic_age": 2 * hour, "max_dataset_age": 24 * hour})  # fmt: skip
    _serve(service, cancer, cancer["cur"][:30], NOW - timedelta(hours=1))
    # The dataset version was added just now (wall clock): "now" a day and a half later.
    later = datetime.now(UTC) + timedelta(hours=36)
    calm = service.run("fresh", now=NOW)
    late = service.run("fresh", now=later)
    fresh = {q["column"]: q for q in calm["quality"] if q["check"] == "freshness"}
    assert {k: v["failed"] for k, v in fresh.items()} == {"traffic": False, "dataset": False}
    stale = {q["column"]: q for q in late["quality"] if q["check"] == "freshness"}
    assert {k: v["failed"] for k, v in stale.items()} == {"traffic": True, "dataset": True}
    assert [a["kind"] for a in late["alerts"]] == ["freshness"], [
        a["message"] for a in late["alerts"]
    ]


def test_settings_out_of_range_are_refused(service: MonitorService) -> None:
    for bad in ({"row_ratio": 2.0}, {"estimate_drop": -0.1}, {"max_traffic_age": "soon"},
                {"colour": "blue"}):  # fmt: skip
        with pytest.raises(InvalidArgumentError):
            service.create("bad", deployment="d", reference="cancer@1", config=bad)

"""Monitors on every metadata backend: create, run on a prediction-log window, results,
history, alerts recorded with their ``monitor.alert`` event in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sklearn.datasets import load_wine

from loopline.data.add import add
from loopline.data.service import DataService
from loopline.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from loopline.events import read_events
from loopline.monitoring.service import MonitorService
from loopline.monitoring.simulate import write_feedback, write_predictions
from loopline.store.blobs import open_blob_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd

    from loopline.store.metadata import Database

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def wine() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).frame
    return frame


@pytest.fixture
def service(db: Database, tmp_path: Path, wine: pd.DataFrame) -> Iterator[MonitorService]:
    blobs = open_blob_store(str(tmp_path / "blobs"))

    def data() -> DataService:
        return DataService.over(db, blobs, user="tester", project="default")

    svc = MonitorService(db, data, tmp_path / "predictions", user="tester", webhook_backoff=0.01)
    reference = wine.assign(prediction=wine["target"])
    reference.to_csv(tmp_path / "wine.csv", index=False)
    add(svc.data, tmp_path / "wine.csv", "wine")
    yield svc
    svc.close()


def _log(svc: MonitorService, frame: pd.DataFrame, when: datetime, labels: bool = True) -> None:
    features = frame.drop(columns=["target"])
    ids = write_predictions(svc.predictions_root, "wine-clf", features,
                            predictions=frame["target"].tolist(), when=when)  # fmt: skip
    if labels:
        write_feedback(svc.predictions_root, "wine-clf", ids, frame["target"].tolist(), when=when)


def test_a_stable_window_raises_nothing_and_history_is_kept(
    service: MonitorService, db: Database, wine: pd.DataFrame
) -> None:
    service.create("wine-mon", deployment="wine-clf", reference="wine@1", target="target",
                   prediction="prediction", window="1h")  # fmt: skip
    sample = wine.sample(frac=0.7, random_state=1)
    _log(service, sample, NOW - timedelta(minutes=10))
    _log(service, wine.head(20), NOW - timedelta(hours=3))  # outside the window
    result = service.run("wine-mon", now=NOW)
    assert result["rows"] == len(sample)
    assert result["drift"]["dataset_drift"] is False
    assert result["alerts"] == []
    assert result["performance"]["current"]["accuracy"] == 1.0
    second = service.run("wine-mon", now=NOW + timedelta(minutes=1))
    history = service.store.history("wine-mon", column="alcohol", category="drift")
    assert [h["run_id"] for h in history] == [result["run_id"], second["run_id"]]
    assert history[0]["metric"] == "ks"
    assert history[0]["p_value"] > 0.05
    assert service.store.get("wine-mon")["last_run_at"] is not None
    assert [r["id"] for r in service.store.runs("wine-mon")] == [second["run_id"], result["run_id"]]
    assert not [e for e in read_events(db) if e.kind == "monitor.alert"]


def test_drift_and_a_performance_drop_raise_alerts_with_events(
    service: MonitorService, db: Database, wine: pd.DataFrame
) -> None:
    service.create("wine-mon", deployment="wine-clf", reference="wine@1", target="target",
                   prediction="prediction", window="1h")  # fmt: skip
    shifted = wine[wine["alcohol"] > wine["alcohol"].median()].copy()
    wrong = shifted.assign(target=(shifted["target"] + 1) % 3)  # labels disagree with predictions
    ids = write_predictions(service.predictions_root, "wine-clf", shifted.drop(columns=["target"]),
                            predictions=shifted["target"].tolist(), when=NOW - timedelta(minutes=5))  # fmt: skip
    write_feedback(service.predictions_root, "wine-clf", ids, wrong["target"].tolist(), when=NOW)
    result = service.run("wine-mon", now=NOW)
    assert "alcohol" in result["drift"]["drifted_columns"]
    kinds = {(a["kind"], a["severity"]) for a in result["alerts"]}
    assert ("performance", "critical") in kinds
    events = [e for e in read_events(db) if e.kind == "monitor.alert"]
    # One event per run, for its worst alert: a retraining trigger fires once.
    assert len(result["alerts"]) > 1
    assert len(events) == 1
    stored = service.store.alerts("wine-mon")
    assert events[0].payload["alert_id"] in {a["id"] for a in stored}
    assert events[0].payload["severity"] == "critical"
    assert events[0].payload["run_id"] == result["run_id"]
    event = events[0]
    assert event.entity_type == "monitor"
    assert event.entity_id == "wine-mon"
    assert set(event.payload) >= {"monitor", "alert_id", "severity", "kind", "message"}
    assert event.payload["dataset"] == "wine@latest"


def test_an_empty_window_is_a_freshness_alert(service: MonitorService) -> None:
    service.create("quiet", deployment="nobody", reference="wine@1", window="30m")
    result = service.run("quiet", now=NOW)
    assert result["rows"] == 0
    assert [a["kind"] for a in result["alerts"]] == ["freshness"]


def test_row_windows_take_the_latest_rows(service: MonitorService, wine: pd.DataFrame) -> None:
    service.create("rows", deployment="wine-clf", reference="wine@1", window="50rows")
    _log(service, wine.head(40), NOW - timedelta(days=2), labels=False)
    _log(service, wine.tail(40), NOW - timedelta(days=1), labels=False)
    assert service.run("rows", now=NOW)["rows"] == 50


def test_bad_monitors_are_refused(service: MonitorService) -> None:
    service.create("m", deployment="d", reference="wine@1")
    with pytest.raises(AlreadyExistsError):
        service.create("m", deployment="d", reference="wine@1")
    with pytest.raises(NotFoundError):
        service.create("m2", deployment="d", reference="nope@1")
    for bad in ({"window": "soon"}, {"schedule": "every day"}, {"webhook": "file:///etc/passwd"},
                {"deployment": "../etc"}):  # fmt: skip
        args = {"deployment": "d", "reference": "wine@1", **bad}
        with pytest.raises(InvalidArgumentError):
            service.create("m3", **args)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        service.run("missing")
    service.store.delete("m")
    assert service.store.list_all() == []


def test_the_reference_profile_is_cached_per_version(service: MonitorService) -> None:
    first, _ = service.reference_profile("wine@1")
    again, _ = service.reference_profile("wine@1")
    assert again.to_dict() == first.to_dict()
    assert np.isclose(first.columns["alcohol"].mean, 13.0006, atol=1e-3)

"""Monitoring through a real ``loopline server`` process: the SDK (``loopline.monitoring``)
and the ``loopline monitor`` CLI with an http:// tracking URI. The server scores the
reference with the deployment's registered model to calibrate CBPE, so a run estimates
quality before labels; the chart endpoints answer what the web UI draws."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import loopline
import loopline.data
import loopline.monitoring as mon
from loopline.cli.main import app
from loopline.config import reset_settings
from loopline.errors import NotFoundError
from loopline.monitoring.simulate import write_feedback, write_predictions

from .conftest import ServerProcess

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = ServerProcess(tmp_path / "server-home")
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", server.url)
    reset_settings()
    yield server
    server.stop()


def test_monitoring_through_a_server(remote: ServerProcess, tmp_path: Path) -> None:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    order = np.random.default_rng(5).permutation(len(frame))
    train, ref, cur = frame.iloc[order[:200]], frame.iloc[order[200:400]], frame.iloc[order[400:]]
    X = train.drop(columns="target")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X, train["target"])
    with loopline.start_run():
        loopline.log_model(model, "model", registered_model_name="cancer", input_example=X.head(3))
    loopline.flush()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    loopline.data.add(tmp_path / "ref.csv", "cancer-ref")
    made = _cli("deploy", "create", "cancer-prod", "--model", "models:/cancer/1")
    assert made.exit_code == 0, made.output

    # Created through the server: it calibrates CBPE with the deployment's model.
    created = _cli("monitor", "create", "cancer-mon", "--deployment", "cancer-prod",
                   "--reference", "cancer-ref@1", "--target", "target", "--window", "1h",
                   "--max-traffic-age", "2h", "--row-ratio", "0.4", "--json")  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["config"]["max_traffic_age"] == 7_200_000
    bad = _cli("monitor", "create", "m2", "--deployment", "cancer-prod",
               "--reference", "cancer-ref@1", "--max-dataset-age", "soon")  # fmt: skip
    assert bad.exit_code == 2

    # An inference server of the deployment logs into the server's prediction log.
    features = cur.drop(columns="target")
    proba = model.predict_proba(features)
    ids = write_predictions(remote_root(remote), "cancer-prod", features,
                            predictions=model.predict(features).tolist(),
                            proba={"0": proba[:, 0].tolist(), "1": proba[:, 1].tolist()},
                            when=datetime.now(UTC) - timedelta(minutes=5),
                            model="cancer", version="1")  # fmt: skip
    ran = _cli("monitor", "run", "cancer-mon")
    assert ran.exit_code == 0, ran.output
    assert "estimated before labels (CBPE" in ran.output

    # The SDK answers the same through the server.
    assert [m["name"] for m in mon.list_monitors()] == ["cancer-mon"]
    first = mon.monitor_runs("cancer-mon")[0]
    estimate = first["summary"]["estimate"]
    assert estimate["models"] == ["models:/cancer/1"]
    assert estimate["realised"] is None
    write_feedback(remote_root(remote), "cancer-prod", ids, cur["target"].tolist())
    second = mon.run_monitor("cancer-mon")
    assert second["estimate"]["labelled_rows"] == len(cur)
    assert abs(second["estimate"]["error"]["accuracy"]) < 0.06
    assert set(second["performance"]["current"]) >= {"accuracy", "f1", "roc_auc", "log_loss"}
    lines = mon.history("cancer-mon", category="performance")
    assert {"accuracy", "estimated.accuracy", "estimated.f1"} <= {h["metric"] for h in lines}
    assert json.loads(_cli("monitor", "history", "cancer-mon", "--json").output)["history"]
    assert "cancer-mon" in _cli("monitor", "show", "cancer-mon").output
    assert json.loads(_cli("monitor", "alerts", "--json").output) == {"alerts": []}
    with pytest.raises(NotFoundError):
        mon.get_monitor("nope")

    # What the web UI draws, straight from the API.
    with httpx.Client(base_url=remote.url + "/api/v1/monitors/cancer-mon") as http:
        drift = http.get("/series", params={"category": "drift"}).json()
        assert len(drift["xs"]) == 2
        line = next(s for s in drift["series"] if s["label"] == "mean radius")
        assert len(line["ys"]) == 2
        perf = http.get("/series", params={"category": "performance"}).json()
        labels = {s["label"] for s in perf["series"]}
        assert {"accuracy", "estimated.accuracy"} <= labels
        dists = http.get(f"/runs/{second['run_id']}/distributions").json()
        radius = next(c for c in dists["columns"] if c["column"] == "mean radius")
        assert len(radius["edges"]) == len(radius["ref"]) + 1 == len(radius["cur"]) + 1
        assert sum(radius["ref"]) == pytest.approx(1.0)
        assert http.get("/runs/999/distributions").status_code == 404

    # A report reads the reference version through the server and compares it here.
    cur.to_parquet(tmp_path / "cur.parquet")
    out = tmp_path / "report.json"
    made = _cli("monitor", "report", "--reference", "cancer-ref@1", "--current",
                str(tmp_path / "cur.parquet"), "--format", "json", "--out", str(out))  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(out.read_text())["summary"]["ref_rows"] == len(ref)

    assert _cli("monitor", "delete", "cancer-mon").exit_code == 0
    assert mon.list_monitors() == []


def remote_root(server: ServerProcess) -> Path:
    """The server's prediction log (its home's ``predictions``, the default root)."""
    return server.log.parent / "predictions"

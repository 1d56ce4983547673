"""``loopline monitor``: create, run (exit 3 on alerts), list, show, history, alerts, report,
through the real root command; a webhook receiver on 127.0.0.1 gets the alerts; the REST
API answers the same history. The deployment serves a registered multi-class model whose
logged probabilities and feedback give ROC AUC and log loss, as scikit-learn computes them."""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import loopline
import loopline.data
import loopline.monitoring as mon
from loopline.cli.main import app
from loopline.config import get_settings
from loopline.monitoring.simulate import write_feedback, write_predictions

from .conftest import _serve_in_thread

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _receiver() -> tuple[http.server.ThreadingHTTPServer, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def test_monitor_end_to_end(tmp_path: Path) -> None:
    wine: pd.DataFrame = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "wine.csv", index=False)
    loopline.data.add(tmp_path / "wine.csv", "wine")
    X = wine.drop(columns="target")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.02, max_iter=2000))
    model.fit(X, wine["target"])
    with loopline.start_run():
        loopline.log_model(model, "model", registered_model_name="wine", input_example=X.head(3))
    loopline.flush()
    deployed = _cli("deploy", "create", "wine-clf", "--model", "models:/wine/1")
    assert deployed.exit_code == 0, deployed.output
    server, got = _receiver()
    hook = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        made = _cli("monitor", "create", "wine-mon", "--deployment", "wine-clf",
                    "--reference", "wine@1", "--target", "target", "--window", "60rows", "--webhook", hook)  # fmt: skip
        assert made.exit_code == 0, made.output
        root = get_settings().predictions_root
        sample = wine.sample(n=60, random_state=0)
        calm = sample.drop(columns="target")
        # Logged as an inference server does, probability columns in no particular order;
        # feedback sends the labels as floats (1.0 for class 1).
        proba = model.predict_proba(calm)
        ids = write_predictions(root, "wine-clf", calm, predictions=model.predict(calm).tolist(),
                                proba={str(c): proba[:, i].tolist() for i, c in
                                       reversed(list(enumerate(model.classes_)))},
                                when=datetime.now(UTC) - timedelta(minutes=5), model="wine")  # fmt: skip
        write_feedback(root, "wine-clf", ids, sample["target"].astype(float).tolist())
        ok = _cli("monitor", "run", "wine-mon")
        assert ok.exit_code == 0, ok.output
        assert "no dataset drift" in ok.output
        first = mon.monitor_runs("wine-mon")[0]["summary"]
        assert first["estimate"]["classes"] == ["0", "1", "2"]
        quality = first["performance"]["current"]
        assert quality["roc_auc"] == pytest.approx(
            roc_auc_score(sample["target"], proba, multi_class="ovr"), abs=1e-12
        )
        assert quality["log_loss"] == pytest.approx(log_loss(sample["target"], proba), abs=1e-12)
        time.sleep(0.01)  # log files sort by their millisecond stamp
        shifted = wine[wine["flavanoids"] > wine["flavanoids"].quantile(0.6)].drop(columns="target")
        write_predictions(root, "wine-clf", shifted, when=datetime.now(UTC))
        drifted = _cli("monitor", "run", "wine-mon", "--json")
        assert drifted.exit_code == 3, drifted.output
        assert got
        assert got[0]["monitor"] == "wine-mon"
        assert got[0]["kind"] == "drift"
    finally:
        server.shutdown()
        server.server_close()
    listed = json.loads(_cli("monitor", "list", "--json").output)
    assert [m["name"] for m in listed["monitors"]] == ["wine-mon"]
    history = json.loads(
        _cli("monitor", "history", "wine-mon", "--column", "flavanoids", "--json").output
    )
    assert [h["flagged"] for h in history["history"] if h["category"] == "drift"] == [False, True]
    alerts = json.loads(_cli("monitor", "alerts", "--json").output)["alerts"]
    assert alerts[0]["delivery"] == "delivered"
    assert "wine-mon" in _cli("monitor", "show", "wine-mon").output

    with _serve_in_thread(get_settings().home) as url, httpx.Client(base_url=url) as client:
        body = client.get(
            "/api/v1/monitors/wine-mon/history", params={"column": "flavanoids"}
        ).json()
        assert [h["flagged"] for h in body["history"] if h["category"] == "drift"] == [False, True]
        assert client.get("/api/v1/monitors").json()["monitors"][0]["name"] == "wine-mon"
        assert client.get("/api/v1/monitors/nope").status_code == 404
        assert client.post("/api/v1/monitors/wine-mon/run").status_code == 200
        assert len(client.get("/api/v1/monitors/wine-mon/runs").json()["runs"]) == 3


def test_report_command_writes_html_and_json(tmp_path: Path) -> None:
    wine: pd.DataFrame = load_wine(as_frame=True).frame
    low = wine[wine["alcohol"] <= wine["alcohol"].median()]
    high = wine[wine["alcohol"] > wine["alcohol"].median()]
    low.to_csv(tmp_path / "low.csv", index=False)
    high.to_parquet(tmp_path / "high.parquet")
    loopline.data.add(tmp_path / "low.csv", "low")
    html = tmp_path / "out" / "r.html"
    done = _cli("monitor", "report", "--reference", "low@1", "--current",
                str(tmp_path / "high.parquet"), "--target", "target", "--out", str(html))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "dataset drift" in done.output
    page = html.read_text()
    assert page.startswith("<!doctype html>")
    assert "alcohol" in page
    out = tmp_path / "r.json"
    _cli("monitor", "report", "--reference", str(tmp_path / "low.csv"), "--current",
         str(tmp_path / "high.parquet"), "--format", "json", "--out", str(out))  # fmt: skip
    doc = json.loads(out.read_text())
    assert "alcohol" in doc["drift"]["drifted_columns"]
    bad = _cli("monitor", "report", "--reference", "nope@1", "--current", str(out))
    assert bad.exit_code == 1

"""Change detectors against river's, quality metrics against scikit-learn's, CBPE against
realised quality, mergeable profiles, webhook delivery to a real local receiver."""

from __future__ import annotations

import http.server
import json
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from river import drift as river_drift
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.monitoring import ADWIN, CBPE, DDM, PageHinkley, Profile, ProfileBuilder, metrics
from loopline.monitoring.alerts import deliver
from loopline.monitoring.detectors import detect

if TYPE_CHECKING:
    from collections.abc import Iterator

RNG = np.random.default_rng(7)


def _river(det: Any, values: list[float]) -> list[int]:
    found = []
    for i, x in enumerate(values):
        det.update(x)
        if det.drift_detected:
            found.append(i)
    return found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detectors_agree_with_river(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mean_shift = list(np.concatenate([rng.normal(0, 1, 1500), rng.normal(2.5, 1, 1500)]))
    assert detect(mean_shift, PageHinkley()) == _river(river_drift.PageHinkley(), mean_shift)
    errors = list(
        (rng.uniform(size=3000) < np.r_[np.full(1500, 0.1), np.full(1500, 0.35)]).astype(float)
    )
    assert detect(errors, DDM()) == _river(river_drift.binary.DDM(), errors)
    ours, theirs = detect(mean_shift, ADWIN()), _river(river_drift.ADWIN(), mean_shift)
    assert ours == theirs
    assert 1500 <= ours[0] < 1600


@pytest.mark.parametrize("seed", range(6))
def test_adwin_detects_every_change_where_river_does(seed: int) -> None:
    """The whole list of detections, over streams with many changes: abrupt mean shifts
    of random sizes and lengths, a slow sinusoidal drift, and error rates that move."""
    rng = np.random.default_rng(100 + seed)
    steps = np.concatenate(
        [rng.normal(m, 1, int(rng.integers(300, 1500))) for m in rng.normal(0, 1.5, 8)]
    )
    gradual = np.sin(np.arange(6000) / 700.0) + rng.normal(0, 0.5, 6000)
    rates = np.r_[np.full(2000, 0.1), np.full(2000, 0.4), np.full(2000, 0.2)]
    errors = (rng.uniform(size=6000) < rates).astype(float)
    found = 0
    for stream in (list(steps), list(gradual), list(errors)):
        theirs = _river(river_drift.ADWIN(), stream)
        assert detect(stream, ADWIN()) == theirs
        found += len(theirs)
    assert found >= 3  # the streams do change


def test_detectors_stay_quiet_on_a_stationary_stream() -> None:
    calm = list(RNG.normal(0, 1, 5000))
    assert detect(calm, ADWIN()) == _river(river_drift.ADWIN(), calm) == []
    assert detect(calm, PageHinkley()) == _river(river_drift.PageHinkley(), calm)


def test_metrics_match_scikit_learn() -> None:
    y = RNG.integers(0, 2, 500)
    p = np.clip(y * 0.6 + RNG.uniform(0, 0.4, 500), 0.01, 0.99)
    pred = (p >= 0.5).astype(int)
    got = metrics(y, pred, proba=p)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p))
    t, q = RNG.normal(size=300), RNG.normal(size=300)
    reg = metrics(t, q, task="regression")
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(t, q))
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(t, q)))
    assert reg["r2"] == pytest.approx(skm.r2_score(t, q))
    multi_t, multi_p = RNG.integers(0, 3, 400), RNG.integers(0, 3, 400)
    assert metrics(multi_t, multi_p)["f1"] == pytest.approx(
        skm.f1_score(multi_t, multi_p, average="macro")
    )


def test_cbpe_estimates_realised_quality_before_labels() -> None:
    data = load_breast_cancer()
    idx = RNG.permutation(len(data.target))
    train, ref, cur = idx[:250], idx[250:410], idx[410:]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        data.data[train], data.target[train]
    )
    est = CBPE(bins=10).fit(model.predict_proba(data.data[ref])[:, 1], data.target[ref])
    p_cur = model.predict_proba(data.data[cur])[:, 1]
    guess = est.estimate(p_cur)
    real = metrics(data.target[cur], (p_cur >= 0.5).astype(int))
    assert abs(guess["accuracy"] - real["accuracy"]) < 0.05
    assert abs(guess["f1"] - real["f1"]) < 0.05


def test_profiles_counted_in_chunks_merge_to_the_whole() -> None:
    ref = pd.DataFrame({"x": RNG.normal(size=5000), "c": RNG.choice(list("xyz"), 5000)})
    cur = pd.DataFrame({"x": RNG.normal(1, size=6000), "c": RNG.choice(list("xyzw"), 6000)})
    profile = Profile.of(ref)
    whole = ProfileBuilder(profile)
    whole.update(cur)
    parts = []
    for chunk in np.array_split(np.arange(len(cur)), 3):
        b = ProfileBuilder(profile)
        b.update(cur.iloc[chunk])
        parts.append(b.result())
    merged = parts[0].merge(parts[1]).merge(parts[2])
    a, b2 = merged.columns["x"], whole.result().columns["x"]
    assert a.cells == b2.cells
    assert a.mean == pytest.approx(cur["x"].mean())
    assert a.std == pytest.approx(cur["x"].std(ddof=0))
    assert merged.columns["c"].categories == whole.result().columns["c"].categories
    assert Profile.from_dict(merged.to_dict()).to_dict() == merged.to_dict()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """A real HTTP server on 127.0.0.1 answering with the statuses queued in ``plan``."""
    got: list[dict[str, Any]] = []
    plan: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append(json.loads(body))
            self.send_response(plan.pop(0) if plan else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, plan
    server.shutdown()
    server.server_close()


def test_webhooks_retry_with_backoff_then_deliver(
    receiver: tuple[str, list[dict[str, Any]], list[int]],
) -> None:
    url, got, plan = receiver
    plan.extend([503, 500])
    result = deliver(url, {"alert_id": 1}, attempts=4, backoff=0.01)
    assert (result.ok, result.attempts) == (True, 3)
    assert got == [{"alert_id": 1}] * 3
    plan.append(400)  # a client error is not retried
    assert deliver(url, {"alert_id": 2}, backoff=0.01).attempts == 1
    nobody = deliver("http://127.0.0.1:9/none", {"x": 1}, attempts=2, backoff=0.01)
    assert not nobody.ok
    assert nobody.attempts == 2

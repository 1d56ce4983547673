"""``loopline serve`` and ``loopline deploy`` as real processes, spoken to by real clients."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest

from loopline import predlog

if TYPE_CHECKING:
    from collections.abc import Iterator

_URL = re.compile(r"http://[\w.\-\[\]:]+:\d+")
COLUMNS = [f"f{i}" for i in range(20)]


def _frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    from sklearn.datasets import make_classification

    X, y = make_classification(400, 20, random_state=0)
    return pd.DataFrame(X, columns=COLUMNS), y


def register(name: str, C: float = 1.0) -> int:
    """Log and register a logistic regression in the test's LOOPLINE_HOME; its version."""
    from sklearn.linear_model import LogisticRegression

    import loopline

    X, y = _frame()
    with loopline.start_run():
        info = loopline.log_model(
            LogisticRegression(C=C, max_iter=500).fit(X, y),
            "model",
            registered_model_name=name,
            input_example=X.head(3),
        )
    return int(info.registered_model_version.version)


class Served:
    """``loopline ARGS`` running a server; ``url`` from its start-up line."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
        env["LOOPLINE_HOME"] = str(home)
        self.log = home / f"serve-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loopline.cli.main", *args, "--port", "0"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.url = self._wait_url()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_url(self) -> str:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                found = _URL.search(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if found:
                return found.group(0)
        pytest.fail(f"the server did not start:\n{self.log.read_text()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail("the server never became ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        server = Served(Path(os.environ["LOOPLINE_HOME"]), *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _row(seed: int = 0) -> list[float]:
    return [float(v) for v in np.random.default_rng(seed).normal(size=20)]


# -- protocols ----------------------------------------------------------------------------
def test_triton_client_and_mlflow_formats(serve: Any) -> None:
    import tritonclient.http as triton

    version = register("churn")
    server = serve("serve", "models:/churn/1", "--max-body-mb", "0.01")
    host = server.url.removeprefix("http://")
    client = triton.InferenceServerClient(host)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert client.get_model_metadata("churn")["inputs"][0]["shape"] == [-1, 20]
    rows = np.array([_row(1), _row(2), _row(3)], dtype=np.float64)
    for binary in (False, True):
        tensor = triton.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = [
            triton.InferRequestedOutput(n, binary_data=binary) for n in ("predict", "predict_proba")
        ]
        result = client.infer("churn", [tensor], model_version=str(version), outputs=outputs)
        proba = result.as_numpy("predict_proba")
        assert proba.shape == (3, 2)
        assert np.allclose(proba.sum(axis=1), 1.0)
        assert result.as_numpy("predict").tolist() == proba.argmax(axis=1).tolist()
    client.close()

    split = {"dataframe_split": {"columns": COLUMNS[::-1], "data": [_row(1)[::-1]]}}
    records = {"dataframe_records": [dict(zip(COLUMNS, _row(1), strict=True))]}
    instances = {"instances": [_row(1)]}
    inputs = {"inputs": {c: [v] for c, v in zip(COLUMNS, _row(1), strict=True)}}
    answers = [
        httpx.post(f"{server.url}/invocations", json=b) for b in (split, records, instances, inputs)
    ]
    csv = ",".join(COLUMNS) + "\n" + ",".join(map(str, _row(1))) + "\n"
    answers.append(
        httpx.post(f"{server.url}/invocations", content=csv, headers={"content-type": "text/csv"})
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert answers[0].headers["x-request-id"]

    bad = {
        "rows of 19": {"instances": [_row(1)[:19]]},
        "zzz": {"dataframe_split": {"columns": [*COLUMNS[:19], "zzz"], "data": [_row(1)]}},
        "string": {"instances": [["x", *_row(1)[1:]]]},
        "exactly one of": {"nothing": 1},
    }
    for expected, body in bad.items():
        answer = httpx.post(f"{server.url}/invocations", json=body)
        assert answer.status_code == 400, answer.text
        assert expected.split()[-1] in answer.json()["message"] or expected in answer.text
    assert httpx.post(f"{server.url}/invocations", content=b"{nope").status_code == 400
    big = httpx.post(f"{server.url}/invocations", json={"instances": [_row(1)] * 200})
    assert big.status_code == 413
    assert "limit" in big.json()["message"]
    assert httpx.post(f"{server.url}/v2/models/nope/infer", json={}).status_code == 404

    metrics = httpx.get(f"{server.url}/metrics").text
    assert (
        'loopline_inference_requests_total{code="200",model="churn",variant="primary",version="1"}'
        in metrics
    )
    assert "loopline_inference_batch_size_bucket" in metrics
    assert 'kind="client"' in metrics


def test_prediction_log_feedback_and_sigkill(serve: Any) -> None:
    """What is logged and how; then a SIGKILL loses at most the unflushed interval."""
    home = Path(os.environ["LOOPLINE_HOME"])
    register("churn")
    server = serve("serve", "models:/churn/1", "--hash", "f0", "--exclude", "f1")
    answer = httpx.post(
        f"{server.url}/invocations",
        json={"instances": [_row(1), _row(2)]},
        headers={"x-request-id": "req-1"},
    )
    assert answer.headers["x-request-id"] == "req-1"
    feedback = httpx.post(
        f"{server.url}/v1/feedback", json={"request_ids": ["req-1"], "labels": [1]}
    )
    assert feedback.json() == {"accepted": 1}
    root = home / "predictions"
    deadline = time.monotonic() + 10
    while not predlog.list_files(root, "feedback", "churn") and time.monotonic() < deadline:
        time.sleep(0.1)
    table = predlog.read_log(root, "predictions", "churn").to_pandas()
    assert table["request_id"].tolist() == ["req-1", "req-1"]
    assert set(table["variant"]) == {"primary"}
    assert set(table["model_version"]) == {"1"}
    assert "in.f1" not in table
    assert len(table["in.f0"][0]) == 64
    assert table["in.f2"].tolist() == pytest.approx([_row(1)[2], _row(2)[2]])
    assert {"out.prediction", "out.proba.0", "out.proba.1"} <= set(table.columns)
    labels = predlog.read_log(root, "feedback", "churn").to_pandas()
    assert labels["request_id"].tolist() == ["req-1"]
    assert labels["label"].tolist() == [1]

    sent = 2
    with httpx.Client() as client:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            client.post(f"{server.url}/invocations", json={"instances": [_row(sent)]})
            sent += 1
    time.sleep(1.5)  # more than one flush interval: everything sent so far is on disk
    server.stop(signal.SIGKILL)
    files = list(root.rglob("*"))
    assert not [f for f in files if f.is_file() and not f.name.startswith("part-")]
    assert predlog.read_log(root, "predictions", "churn").num_rows == sent


# -- following an alias -----------------------------------------------------------------------
@pytest.mark.slow
def test_alias_move_swaps_without_failing_a_request(serve: Any) -> None:
    import loopline

    register("churn", C=1.0)
    register("churn", C=0.01)
    loopline.registry.set_alias("churn", "champion", 1)
    server = serve("serve", "models:/churn@champion")
    stop = threading.Event()
    versions: list[str] = []
    failures: list[str] = []

    def hammer() -> None:
        body = {
            "inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP64", "data": _row(5)}]
        }
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                answer = client.post(f"{server.url}/v2/models/churn/infer", json=body)
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    versions.append(answer.json()["model_version"])

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(hammer)
        time.sleep(0.5)
        loopline.registry.set_alias("churn", "champion", 2)
        deadline = time.monotonic() + 30
        while (not versions or versions[-1] != "2") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
    assert not failures
    assert versions[0] == "1"
    assert versions[-1] == "2"
    assert versions.index("2") > 0  # served throughout the load of version 2


# -- deployments ----------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )


@pytest.mark.slow
def test_deploy_canary_promote_rollback(serve: Any) -> None:
    import loopline

    for c in (1.0, 0.01, 0.001):
        register("churn", C=c)
    loopline.registry.set_alias("churn", "champion", 1)
    assert (
        _cli("deploy", "create", "churn-prod", "--model", "models:/churn@champion").returncode == 0
    )
    server = serve("deploy", "serve", "churn-prod", "--poll-interval", "0.1")
    body = {"instances": [_row(7)]}

    def served_versions(n: int) -> set[str]:
        out = set()
        for _ in range(n):
            reply = httpx.post(
                f"{server.url}/v2/models/churn-prod/infer",
                json={
                    "inputs": [
                        {"name": "input", "shape": [1, 20], "datatype": "FP64", "data": _row(7)}
                    ]
                },
            )
            out.add(reply.json()["model_version"])
        return out

    assert served_versions(5) == {"1"}
    done = _cli("deploy", "canary", "churn-prod", "--model", "models:/churn/2", "--percent", "50")
    assert done.returncode == 0, done.stderr
    _wait_for(lambda: served_versions(30) == {"1", "2"})
    done = _cli("deploy", "shadow", "churn-prod", "--model", "models:/churn/3")
    assert done.returncode == 0, done.stderr
    assert _cli("deploy", "promote", "churn-prod").returncode == 0
    _wait_for(lambda: served_versions(10) == {"2"})
    assert loopline.registry.resolve("models:/churn@champion").version == 2
    assert httpx.post(f"{server.url}/invocations", json=body).status_code == 200
    assert _cli("deploy", "rollback", "churn-prod").returncode == 0
    _wait_for(lambda: served_versions(10) == {"1"})
    status = _cli("deploy", "status", "churn-prod", "--json")
    import json

    doc = json.loads(status.stdout)
    actions = [h["action"] for h in doc["history"]]
    assert actions == ["created", "canary_started", "shadow_set", "promoted", "rolled_back"]
    assert doc["current_version"] == 1
    assert doc["shadow"]["version"] == 3
    events = [e.kind for e in loopline.Client().events(kinds=["deployment.*"])]
    assert events == [f"deployment.{a}" for a in actions]
    shadow_rows = predlog.read_log(
        Path(os.environ["LOOPLINE_HOME"]) / "predictions", "predictions", "churn-prod"
    ).to_pandas()
    _wait_for(
        lambda: (
            "shadow"
            in set(
                predlog.read_log(
                    Path(os.environ["LOOPLINE_HOME"]) / "predictions", "predictions", "churn-prod"
                ).to_pandas()["variant"]
            )
        )
    )
    assert set(shadow_rows["variant"]) <= {"primary", "canary", "shadow"}


@pytest.mark.slow
def test_canary_breaching_its_limits_is_rolled_back(serve: Any) -> None:
    import loopline
    from loopline.serving.deployments import open_deployments

    register("churn")
    register("churn", C=0.5)
    service = open_deployments()
    service.create(
        "churn-prod",
        "models:/churn/1",
        limits={"max_p99_ms": 0.001, "window_seconds": 30, "min_requests": 5},
    )
    # The promotion rule is met by the same requests that breach: the breach wins.
    service.set_canary("churn-prod", "models:/churn/2", 100, limits={"promote_after_requests": 5})
    server = serve("deploy", "serve", "churn-prod", "--poll-interval", "0.1")
    for _ in range(10):
        assert (
            httpx.post(f"{server.url}/invocations", json={"instances": [_row(1)]}).status_code
            == 200
        )
    _wait_for(lambda: service.get("churn-prod").canary is None)
    time.sleep(0.5)  # several more polls: nothing else may happen
    history = service.history("churn-prod")
    assert [h.action for h in history] == ["created", "canary_started", "canary_rolled_back"]
    assert "p99 latency" in history[-1].reason
    assert "automatic" in history[-1].reason
    assert service.get("churn-prod").current_version == 1
    _ = loopline


@pytest.mark.slow
def test_healthy_canary_is_promoted_once_by_two_servers(serve: Any) -> None:
    """Two servers follow one deployment; the first whose canary earns the rule promotes."""
    import json

    import loopline

    register("churn", C=1.0)
    register("churn", C=0.01)
    loopline.registry.set_alias("churn", "champion", 1)
    created = _cli(
        "deploy", "create", "churn-prod", "--model", "models:/churn@champion",
        "--min-requests", "5", "--max-p99-ms", "5000", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    servers = [serve("deploy", "serve", "churn-prod", "--poll-interval", "0.1") for _ in "ab"]
    started = _cli(
        "deploy", "canary", "churn-prod", "--model", "models:/churn/2", "--percent", "50",
        "--promote-after-requests", "10",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "automatic, after 10 requests within the limits" in started.stdout
    service = loopline.Client()
    infer = {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP64", "data": _row(7)}]}
    versions: list[set[str]] = [set(), set()]
    with httpx.Client(timeout=10) as http:
        deadline = time.monotonic() + 60
        while loopline.registry.resolve("models:/churn@champion").version == 1:
            assert time.monotonic() < deadline, "the canary was never promoted"
            for i, server in enumerate(servers):
                answer = http.post(f"{server.url}/v2/models/churn-prod/infer", json=infer)
                assert answer.status_code == 200, answer.text
                versions[i].add(answer.json()["model_version"])
        assert versions == [{"1", "2"}, {"1", "2"}]  # both routed to the canary before

        def only_v2() -> bool:
            return all(
                {
                    http.post(f"{s.url}/v2/models/churn-prod/infer", json=infer).json()[
                        "model_version"
                    ]
                    for _ in range(10)
                }
                == {"2"}
                for s in servers
            )

        _wait_for(only_v2)
    time.sleep(0.5)  # both servers polled again after the promotion
    status = json.loads(_cli("deploy", "status", "churn-prod", "--json").stdout)
    assert [h["action"] for h in status["history"]] == ["created", "canary_started", "promoted"]
    reason = status["history"][-1]["reason"]
    assert reason.startswith("automatic promotion: canary served ")
    assert "within its limits" in reason
    assert status["canary"] is None
    assert status["current_version"] == 2
    moves = loopline.registry.alias_history("churn", "champion")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, 1), (1, 2)]
    assert [e.kind for e in service.events(kinds=["deployment.promoted"])] == [
        "deployment.promoted"
    ]
    text = _cli("deploy", "status", "churn-prod").stdout
    assert "promotion  automatic, after 10 requests within the limits" in text


def _wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the condition never held")
        time.sleep(0.1)

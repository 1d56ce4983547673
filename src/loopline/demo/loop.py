"""The closed loop, end to end, on the embedded store: ``python -m loopline.demo.loop``.

Real data (river's Statlog Shuttle file, bundled with the package): sensor readings
where anomalies are rare while the first sensor reads low and common once it reads
high. The shift in that sensor is the drift.

1. version the first regime's data (v1); the pipeline validates, trains, gates and
   registers the first champion;
2. a deployment serves the champion; a monitor watches its predictions against v1;
   a trigger says: retrain when the monitor alerts;
3. ordinary traffic (no alert), then drifted traffic and a new data version (v2);
4. the monitor sees the drift and alerts; the scheduler fires the retraining on v2;
   the gate compares the challenger with the champion on the same hold-out version;
5. the challenger goes out as a canary under a promotion rule; after 30 requests within
   the deployment's limits its server promotes it (a breach would have rolled it back);
   traffic flows throughout and no request fails.

Every command the loop runs is a ``loopline`` command a user could type; the
timeline at the end says what happened and where to look.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from loopline.demo.main import Timeline
from loopline.demo.shuttle import MODEL, TARGET

if TYPE_CHECKING:
    import pandas as pd

    from loopline.serving.deployments import DeploymentChange

__all__ = ["LoopResult", "Traffic", "main", "run_loop"]

PIPELINE = Path(__file__).with_name("shuttle.py")
DEPLOYMENT = "shuttle"
MONITOR = "shuttle-drift"
SPLIT_SENSOR = "f1"
CANARY_REQUESTS = 30
"""Healthy canary requests after which the deployment's server promotes the canary."""


@dataclass(slots=True)
class LoopResult:
    """What the loop did, for the timeline and for tests."""

    champion_before: int = 0
    champion_after: int = 0
    first_run: str = ""
    retrain_run: str = ""
    alerts: int = 0
    requests: int = 0
    failed_requests: int = 0
    canary_requests: int = 0
    stopped_for_approval: str = ""
    report: str = ""
    drift_report: str = ""
    timeline: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Data:
    train_v1: pd.DataFrame
    holdout_v1: pd.DataFrame
    train_v2: pd.DataFrame
    holdout_v2: pd.DataFrame
    normal_traffic: pd.DataFrame
    drifted_traffic: pd.DataFrame


def load_shuttle(scale: float = 1.0) -> _Data:
    """Two regimes of the Shuttle data, split on the first sensor's reading."""
    import pandas as pd
    from river import datasets

    frame = pd.read_csv(datasets.Shuttle().path)
    if scale < 1.0:
        frame = frame.sample(frac=scale, random_state=1)
    cut = frame[SPLIT_SENSOR].quantile(0.7)
    low = frame[frame[SPLIT_SENSOR] < cut].sample(frac=1.0, random_state=0)
    high = frame[frame[SPLIT_SENSOR] >= cut].sample(frac=1.0, random_state=0)
    a, b = len(low) * 7 // 10, len(high) // 2
    train_v1, holdout_v1 = low.iloc[:a], low.iloc[a:]
    new_train, new_holdout = high.iloc[:b], high.iloc[b:]
    return _Data(
        train_v1=train_v1,
        holdout_v1=holdout_v1,
        train_v2=pd.concat([train_v1, new_train]),
        holdout_v2=pd.concat([holdout_v1, new_holdout]),
        normal_traffic=holdout_v1,
        drifted_traffic=new_holdout,
    )


class Traffic:
    """Clients sending single-row requests to ``/invocations`` and labels to ``/v1/feedback``."""

    def __init__(self, url: str, frame: pd.DataFrame, *, clients: int = 4) -> None:
        self.url = url
        self.frame = frame
        self.clients = clients
        self.sent = 0
        self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def run(self, rows: int) -> None:
        """Send ``rows`` requests (cycling through the frame) and wait for them."""
        self.start(rows)
        self.wait()

    def start(self, rows: int | None = None) -> None:
        """Send requests in the background until ``rows`` are sent or :meth:`stop`."""
        self._stop.clear()
        counter = iter(range(rows if rows is not None else 10**12))
        self._threads = [
            threading.Thread(target=self._client, args=(counter,), daemon=True)
            for _ in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join()

    def _client(self, counter: Any) -> None:
        import httpx

        features = self.frame.drop(columns=TARGET)
        columns = list(features.columns)
        values = features.to_numpy().tolist()
        labels = self.frame[TARGET].tolist()
        ids: list[str] = []
        sent: list[int] = []
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for i in counter:
                if self._stop.is_set():
                    break
                row = i % len(values)
                body = {"dataframe_split": {"columns": columns, "data": [values[row]]}}
                try:
                    answer = http.post("/invocations", json=body)
                    ok = answer.status_code == 200
                except Exception as exc:
                    ok, answer = False, None
                    self.errors.append(repr(exc))
                with self._lock:
                    self.sent += 1
                    if not ok:
                        self.failed += 1
                        if answer is not None:
                            self.errors.append(f"{answer.status_code} {answer.text[:200]}")
                if ok and answer is not None:
                    ids.append(answer.headers["x-request-id"])
                    sent.append(row)
                if len(ids) >= 200:
                    self._feedback(http, ids, [labels[r] for r in sent])
                    ids, sent = [], []
            if ids:
                self._feedback(http, ids, [labels[r] for r in sent])

    @staticmethod
    def _feedback(http: Any, ids: list[str], labels: list[Any]) -> None:
        http.post("/v1/feedback", json={"request_ids": ids, "labels": labels}).raise_for_status()


# -- the loop --------------------------------------------------------------------------


class _Loop:
    def __init__(self, console: Console, workdir: Path, scale: float, env: dict[str, str]) -> None:
        self.console = console
        self.workdir = workdir
        self.scale = scale
        self.env = env
        self.timeline = Timeline(console)
        self.result = LoopResult()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []
        # Requests per traffic phase; the monitor's window is one phase.
        self.rows = max(200, int(1000 * scale))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``loopline`` command as a user would; its output goes to the log file."""
        command = [sys.executable, "-m", "loopline.cli.main", *args]
        done = subprocess.run(
            command, env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=900
        )
        with (self.workdir / "loop.log").open("a") as log:
            log.write(f"$ loopline {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if check and done.returncode != 0:
            raise RuntimeError(
                f"`loopline {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def note(self, text: str) -> None:
        self.result.timeline.append(text)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()

    def run(self) -> LoopResult:
        import loopline.data
        import loopline.registry

        step = self.timeline.step
        with step("load the Shuttle data (bundled with river) in two regimes") as say:
            data = load_shuttle(self.scale)
            say(f"{len(data.train_v1):,} training rows, drift on sensor {SPLIT_SENSOR}")
        files = self.workdir / "data"
        files.mkdir(parents=True, exist_ok=True)
        with step("version the data: shuttle-train@1, shuttle-holdout@1") as say:
            data.train_v1.to_csv(files / "train.csv", index=False)
            data.holdout_v1.to_csv(files / "holdout.csv", index=False)
            self.cli(
                "data",
                "add",
                str(files / "train.csv"),
                "--name",
                "shuttle-train",
                "-m",
                "first regime",
            )
            self.cli(
                "data",
                "add",
                str(files / "holdout.csv"),
                "--name",
                "shuttle-holdout",
                "-m",
                "first regime",
            )
            say("content-addressed, with schema and profile")
        with step("pipeline: validate, train, gate, register, promote to champion") as say:
            done = self.cli(
                "pipeline", "run", f"{PIPELINE}:retrain", "-p", "promote_to=champion", "--json"
            )
            self.result.first_run = _run_id(done.stdout)
            self.result.champion_before = loopline.registry.resolve(f"{MODEL}@champion").version
            say(f"run {self.result.first_run[:12]} made {MODEL}@{self.result.champion_before}")
            self.note(
                f"pipeline run {self.result.first_run}: {MODEL}@"
                f"{self.result.champion_before} is the champion"
            )
        with step("deployment, monitor and retraining trigger") as say:
            self.cli(
                "deploy",
                "create",
                DEPLOYMENT,
                "--model",
                f"models:/{MODEL}@champion",
                "--min-requests",
                "30",
                "--window",
                "30",
            )
            self.cli(
                "monitor",
                "create",
                MONITOR,
                "--deployment",
                DEPLOYMENT,
                "--reference",
                "shuttle-train@1",
                "--target",
                TARGET,
                "--window",
                f"{self.rows}rows",
            )
            self.cli(
                "pipeline",
                "schedule",
                f"{PIPELINE}:retrain",
                "--on-alert",
                MONITOR,
                "--data-param",
                "train_data",
                "-p",
                "promote_to=challenger",
            )
            say(f"{DEPLOYMENT} follows {MODEL}@champion; {MONITOR} retrains on alert")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with step(f"serve the deployment at {url}") as say:
            log = (self.workdir / "serve.log").open("ab")
            self.logs.append(log)
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "loopline.cli.main",
                        "deploy",
                        "serve",
                        DEPLOYMENT,
                        "--port",
                        str(port),
                        "--poll-interval",
                        "0.2",
                    ],
                    env=self.env,
                    cwd=self.workdir,
                    stdout=log,
                    stderr=log,
                )
            )
            _wait_ready(url, self.processes[-1])
            say(f"champion {MODEL}@{self.result.champion_before} answers")
        normal = Traffic(url, data.normal_traffic)
        n = self.rows
        with step("ordinary traffic, with ground truth sent back") as say:
            normal.run(n)
            time.sleep(1.5)  # the prediction log flushes every second
            done = self.cli("monitor", "run", MONITOR, check=False)
            if done.returncode not in (0, 3):
                raise RuntimeError(done.stderr)
            say(
                f"{normal.sent} requests; monitor: "
                f"{'alert' if done.returncode == 3 else 'no drift'}"
            )
        with step("new data arrives: shuttle-train@2, shuttle-holdout@2") as say:
            data.train_v2.to_csv(files / "train.csv", index=False)
            data.holdout_v2.to_csv(files / "holdout.csv", index=False)
            self.cli(
                "data",
                "add",
                str(files / "train.csv"),
                "--name",
                "shuttle-train",
                "-m",
                "both regimes",
            )
            self.cli(
                "data",
                "add",
                str(files / "holdout.csv"),
                "--name",
                "shuttle-holdout",
                "-m",
                "both regimes",
            )
            say(f"{len(data.train_v2):,} training rows")
        drifted = Traffic(url, data.drifted_traffic)
        with step(f"drifted traffic ({SPLIT_SENSOR} reads high)") as say:
            drifted.run(n)
            time.sleep(1.5)
            done = self.cli("monitor", "run", MONITOR, check=False)
            alerts = self.cli("monitor", "alerts", MONITOR, "--json").stdout
            self.result.alerts = alerts.count('"alert_id"') or alerts.count('"id"')
            self.result.drift_report = str(self.workdir / "drift.html")
            self.cli(
                "monitor",
                "report",
                "--reference",
                "shuttle-train@1",
                "--current",
                str(_drift_sample(data, self.workdir)),
                "--format",
                "html",
                "--out",
                self.result.drift_report,
            )
            say("drift detected, alert raised" if done.returncode == 3 else "no alert (!)")
            self.note(
                f"monitor {MONITOR} alerted on drifted traffic (report: {self.result.drift_report})"
            )
            if done.returncode != 3:
                raise RuntimeError(f"the monitor raised no alert:\n{done.stdout}{done.stderr}")
        with step("the alert fires the retraining trigger (scheduler)") as say:
            self.cli("scheduler", "--once", check=False)
            firings = self.cli("pipeline", "firings", "--json").stdout
            self.result.retrain_run = _latest_retrain(firings, self.result.first_run)
            status = _pipeline_status(self, self.result.retrain_run)
            if status == "waiting_approval":
                self.result.stopped_for_approval = self.result.retrain_run
                say("the gate passed; the registry requires an approval: the loop stops here")
                return self.result
            if status != "succeeded":
                raise RuntimeError(f"the retraining run {self.result.retrain_run} is {status}")
            challenger = loopline.registry.resolve(f"{MODEL}@challenger").version
            say(
                f"run {self.result.retrain_run[:12]}: gate passed, {MODEL}@{challenger} "
                "is the challenger"
            )
            self.note(
                f"pipeline run {self.result.retrain_run} (fired by the alert): "
                f"{MODEL}@{challenger} beat the champion on shuttle-holdout@2"
            )
        self.result.report = str(self.workdir / "loopline-report")
        self.cli("ci", "report", self.result.retrain_run, "--out", self.result.report, check=False)
        background = Traffic(url, data.drifted_traffic, clients=3)
        background.start()
        try:
            with step(
                f"canary: 20% of traffic to {MODEL}@{challenger}, "
                f"promoted by its server after {CANARY_REQUESTS} healthy requests"
            ) as say:
                self.cli(
                    "deploy",
                    "canary",
                    DEPLOYMENT,
                    "--model",
                    f"models:/{MODEL}@challenger",
                    "--percent",
                    "20",
                    "--promote-after-requests",
                    str(CANARY_REQUESTS),
                )
                promotion = _wait_promotion(timeout=60)
                self.result.canary_requests = _canary_requests(url)
                say(f"{self.result.canary_requests} canary requests, within the limits")
            with step("automatic promotion: champion moves to the challenger's version") as say:
                self.result.champion_after = loopline.registry.resolve(f"{MODEL}@champion").version
                _wait_serving(url, self.result.champion_after, timeout=60)
                time.sleep(1.0)
                say(f"{MODEL}@champion = {self.result.champion_after}, swapped under load")
                self.note(
                    f"deployment {DEPLOYMENT} revision {promotion.revision}: {promotion.reason}"
                )
        finally:
            background.stop()
        self.result.requests = normal.sent + drifted.sent + background.sent
        self.result.failed_requests = normal.failed + drifted.failed + background.failed
        self.note(
            f"canary of {MODEL}@{self.result.champion_after} promoted by its server; "
            f"{self.result.requests} requests, {self.result.failed_requests} failed"
        )
        return self.result


def run_loop(workdir: Path, *, scale: float = 1.0, console: Console | None = None) -> LoopResult:
    """Run the whole loop in ``workdir`` against the store ``LOOPLINE_HOME`` names."""
    console = console or Console(highlight=False)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    loop = _Loop(console, workdir, scale, env)
    try:
        return loop.run()
    finally:
        loop.close()


def main() -> None:
    """``make demo``: the closed loop with a timeline of what happened."""
    from loopline.config import get_settings

    console = Console(highlight=False)
    settings = get_settings()
    workdir = settings.home / "loop"
    if (settings.home / "loopline.db").exists():
        console.print(
            f"[yellow]{escape(str(settings.home))} already holds a store; "
            "the loop starts over in a fresh one[/yellow]"
        )
        import shutil

        fresh = settings.home.with_name(settings.home.name + ".previous")
        shutil.rmtree(fresh, ignore_errors=True)
        settings.home.rename(fresh)
    os.environ["LOOPLINE_HOME"] = str(settings.home)
    console.print(f"[bold]loopline: the closed loop[/bold] in {escape(str(settings.home))}\n")
    began = time.perf_counter()
    result = run_loop(workdir, console=console)
    console.print("\n[bold]What happened[/bold]")
    for line in result.timeline:
        console.print(f"  • {escape(line)}")
    if result.stopped_for_approval:
        console.print(
            f"\n[yellow]Stopped: run {result.stopped_for_approval} waits for an approval "
            "(`loopline models approve ...`).[/yellow]"
        )
    console.print("\n[bold]Where to look[/bold]")
    for line in (
        f"loopline pipeline show {result.retrain_run}",
        f"loopline models lineage {MODEL}@champion",
        f"loopline deploy status {DEPLOYMENT}",
        f"loopline monitor history {MONITOR}",
        f"report: {result.report}/report.md   drift: {result.drift_report}",
        "loopline server   # then open http://127.0.0.1:5000",
    ):
        console.print(f"  {escape(line)}", soft_wrap=True)
    console.print(
        f"\n[dim]done in {time.perf_counter() - began:.0f}s; "
        f"commands and their output: {workdir / 'loop.log'}[/dim]"
    )


# -- helpers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the inference server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the inference server at {url} did not become ready")


def _canary_requests(url: str) -> int:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0
    for family in text_string_to_metric_families(text):
        if family.name != "loopline_inference_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("variant") == "canary":
                total += int(sample.value)
    return total


def _wait_promotion(*, timeout: float) -> DeploymentChange:
    """The history entry that ended the canary: its automatic promotion, or an error."""
    from loopline.serving.deployments import open_deployments

    service = open_deployments()
    try:
        deadline = time.monotonic() + timeout
        while service.get(DEPLOYMENT).canary is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the canary was not promoted within {timeout:.0f}s")
            time.sleep(0.2)
        last = service.history(DEPLOYMENT)[-1]
    finally:
        service.close()
    if last.action != "promoted":
        raise RuntimeError(f"the canary was not promoted: {last.action} ({last.reason})")
    return last


def _wait_serving(url: str, version: int, *, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = httpx.get(f"{url}/v2/models/{DEPLOYMENT}", timeout=5)
        if meta.status_code == 200 and str(version) in [str(v) for v in meta.json()["versions"]]:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not swap to version {version}")


def _run_id(stdout: str) -> str:
    import json

    return str(json.loads(stdout)["run_id"])


def _latest_retrain(firings_json: str, first_run: str) -> str:
    import json

    firings = json.loads(firings_json)
    runs = [
        f["pipeline_run_id"]
        for f in firings
        if f.get("pipeline_run_id") and f["pipeline_run_id"] != first_run
    ]
    if not runs:
        raise RuntimeError(f"the scheduler fired no retraining: {firings_json}")
    return str(runs[0])


def _pipeline_status(loop: _Loop, run_id: str) -> str:
    import json

    shown = loop.cli("pipeline", "show", run_id, "--json").stdout
    return str(json.loads(shown)["status"])


def _drift_sample(data: _Data, workdir: Path) -> Path:
    path = workdir / "data" / "drifted-traffic.csv"
    data.drifted_traffic.drop(columns=TARGET).to_csv(path, index=False)
    return path


if __name__ == "__main__":  # pragma: no cover
    main()

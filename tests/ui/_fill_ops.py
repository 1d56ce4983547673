"""Pipelines, a deployment with live traffic, and a monitor, for the browser tests.

Run as a script with ``LOOPLINE_HOME`` set, after ``_fill.py``. Everything goes
through the real commands users run:

- ``loopline pipeline run`` of ``pipeline_demo.py`` (one run that succeeds, one whose
  ``check`` step raises), a cron trigger and a new-data trigger that
  ``loopline scheduler --once`` fires after a new dataset version;
- a small scikit-learn model on five named features (two registered versions),
  ``loopline deploy create`` following its champion with a 30 % canary, and a real
  ``loopline deploy serve`` session: requests in three phases (the last one shifted),
  with ground-truth feedback;
- ``loopline monitor create`` on that deployment, and ``loopline monitor run`` after
  each phase, so drift, quality and model-quality results exist over time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import loopline
from loopline import predlog
from loopline.config import get_settings

if TYPE_CHECKING:
    import pandas as pd

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline_demo.py"
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst symmetry"]
DATASET = "cancer-mini"
MODEL = "cancer-mini"
DEPLOYMENT = "cancer-prod"
MONITOR = "cancer-mon"
WINDOW_ROWS = 120
_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def cli(*args: str, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode in ok, f"loopline {args}: {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def frame() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    return data[[*FEATURES, "target"]]


def dataset_and_models(table: pd.DataFrame) -> None:
    folder = get_settings().home / "ui-data" / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "cancer.csv", index=False)
    loopline.data.add(folder, DATASET, message="five features of the breast cancer data")
    loopline.set_experiment("cancer-mini")
    for c in (1.0, 0.01):
        with loopline.start_run(run_name=f"logreg-C{c}"):
            loopline.log_params({"C": c})
            model = LogisticRegression(C=c, max_iter=5000).fit(table[FEATURES], table["target"])
            loopline.log_metric("accuracy", model.score(table[FEATURES], table["target"]))
            loopline.log_model(
                model, "model", registered_model_name=MODEL, input_example=table[FEATURES].head(3)
            )
    loopline.flush()
    loopline.registry.set_alias(MODEL, "champion", 1)


def pipelines(table: pd.DataFrame) -> None:
    cli("pipeline", "run", str(PIPELINE), "-p", f"dataset={DATASET}@latest")
    cli("pipeline", "run", str(PIPELINE), "-p", f"dataset={DATASET}@1", "-p", "fail_check=1",
        ok=(1,))  # fmt: skip
    cli("pipeline", "schedule", f"{PIPELINE}:cancer", "--cron", "0 3 * * *")
    cli("pipeline", "schedule", f"{PIPELINE}:cancer", "--on-new-data", DATASET)
    # A new version for the new-data trigger to fire on.
    folder = get_settings().home / "ui-data" / DATASET
    table.head(500).to_csv(folder / "cancer.csv", index=False)
    cli("data", "add", str(folder), "--name", DATASET, "-m", "the first 500 rows")
    cli("scheduler", "--once")


class Serving:
    """``loopline deploy serve`` as a process on a free port."""

    def __init__(self, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli.main", "deploy", "serve", name, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:
            seen.append(line)
            found = _URL.search(line)
            if found:
                self.url = found.group(0)
                break
        else:
            raise AssertionError("deploy serve did not start:\n" + "".join(seen))
        deadline = time.monotonic() + 60
        while httpx.get(f"{self.url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "deploy serve never became ready"
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: the prediction log writes what it holds
        self.proc.wait(timeout=30)


def logged_rows() -> int:
    root = get_settings().predictions_root
    return predlog.read_log(root, "predictions", DEPLOYMENT, columns=["request_id"]).num_rows


def traffic(url: str, rows: pd.DataFrame, logged_before: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        ids, labels = [], []
        for start in range(0, len(rows), 2):
            chunk = rows.iloc[start : start + 2]
            answer = client.post(
                "/invocations", json={"dataframe_split": chunk[FEATURES].to_dict("split")}
            )
            answer.raise_for_status()
            ids.append(answer.headers["x-request-id"])
            labels.append(int(chunk["target"].iloc[0]))
        # A deployment answers under its own name and its model's: the feedback says which.
        body = {"model": DEPLOYMENT, "request_ids": ids, "labels": labels}
        answer = client.post("/v1/feedback", json=body)
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    while logged_rows() < logged_before + len(rows):
        assert time.monotonic() < deadline, "the prediction log did not catch up"
        time.sleep(0.2)


def deployment_and_monitor(table: pd.DataFrame) -> None:
    cli(
        "deploy",
        "create",
        DEPLOYMENT,
        "--model",
        f"models:/{MODEL}@champion",
        "--max-p99-ms",
        "500",
    )
    cli("deploy", "canary", DEPLOYMENT, "--model", f"models:/{MODEL}/2", "--percent", "30")
    cli("monitor", "create", MONITOR, "--deployment", DEPLOYMENT, "--reference", f"{DATASET}@1",
        "--target", "target", "--window", f"{WINDOW_ROWS}rows")  # fmt: skip
    calm = table.sample(n=2 * WINDOW_ROWS, random_state=0)
    shifted = table[table["mean radius"] > table["mean radius"].quantile(0.55)]
    phases = [calm.iloc[:WINDOW_ROWS], calm.iloc[WINDOW_ROWS:], shifted.head(WINDOW_ROWS)]
    server = Serving(DEPLOYMENT)
    try:
        for phase in phases:
            traffic(server.url, phase, logged_rows() if phase is not phases[0] else 0)
            time.sleep(1.5)  # the feedback file follows on the logger's next flush
            cli("monitor", "run", MONITOR, ok=(0, 3))
    finally:
        server.stop()


if __name__ == "__main__":
    from concurrent.futures import ThreadPoolExecutor

    table = frame()
    dataset_and_models(table)
    # Two independent halves, mostly waiting on subprocesses: side by side they take
    # the time of the longer one (the store takes concurrent writers).
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(pipelines, table), pool.submit(deployment_and_monitor, table)]:
            done.result()

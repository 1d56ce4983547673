"""Model serving, ``loopline serve`` vs ``mlflow models serve``, under the same ``wrk`` load.

Both sides serve the same kind of model (scikit-learn logistic regression, 20
features, trained on the same generated data) and answer the same single-row
``POST /invocations`` (``dataframe_split``). loopline logs every prediction (its
default). Items:

1. a lone client (1 connection): p50 and p99 latency;
2. 16 concurrent clients: requests/s and p99 latency;
3. 64 concurrent clients, loopline only: adaptive batching on vs off
   (``--max-batch-size 1``), alternating twice.

Batching off is bound by scikit-learn's cost per call, not by the server: each call
validates its input (about 0.35 ms here, for one row as for 64; the served logistic
regression makes one ``predict_proba`` call per batch), so one-row batches cap a
worker near 2,000 requests/s on an idle core, and far lower when the machine is
loaded (the ``loopline_inference_predict_seconds`` histogram shows the share of time
spent predicting).

``wrk`` comes from Debian (``apt-get install -y wrk`` when missing).

Run one side: ``python benchmarks/serving.py --side mlflow --json``; both sides and
the table: ``python benchmarks/run.py --only serving``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script, possibly by a peer's interpreter
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Goal,
    Progress,
    Results,
    Row,
    Server,
    figure,
    free_port,
    run_item,
    side_main,
    temp_dir,
)

NAME = "serving"
PEERS = {"mlflow": ["mlflow==3.17.*", "scikit-learn", "skops", "uvicorn"]}
PEER_ENV = {"mlflow": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}}
PACKAGES = {
    "loopline": ["loopline", "scikit-learn", "uvicorn", "numpy"],
    "mlflow": ["mlflow", "scikit-learn", "uvicorn"],
}
COLUMNS = [f"f{i}" for i in range(20)]

ROWS = [
    Row(
        "16 concurrent clients, single rows: requests/s",
        "c16_rps",
        "mlflow",
        "c16_rps",
        True,
        Goal("speedup", 20, "≥ 20x MLflow"),
    ),
    Row(
        "16 concurrent clients: p99 latency",
        "c16_p99_ms",
        "mlflow",
        "c16_p99_ms",
        False,
        Goal("speedup", 10, "≤ 1/10 of MLflow"),
    ),
    Row(
        "lone request: p50 latency",
        "c1_p50_ms",
        "mlflow",
        "c1_p50_ms",
        False,
        Goal("max", 2.0, "< 2 ms"),
    ),
    Row("lone request: p99 latency", "c1_p99_ms", "mlflow", "c1_p99_ms", False),
    Row("64 clients, adaptive batching on: requests/s", "c64_batch_on_rps", "mlflow", None, True),
    Row("64 clients, batching off: requests/s", "c64_batch_off_rps", "mlflow", None, True),
]


def sizes_for(quick: bool) -> dict[str, int]:
    return {"seconds": 4 if quick else 10}


def _train() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(2000, 20, random_state=0)
    frame = pd.DataFrame(X, columns=COLUMNS)
    return LogisticRegression(max_iter=1000).fit(frame, y), frame


def _script(folder: str) -> str:
    row = [round(0.1 * i - 1.0, 3) for i in range(20)]
    body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [row]}})
    path = os.path.join(folder, "post.lua")
    with open(path, "w") as fh:
        fh.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    return path


def _wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, script: str, connections: int, seconds: int) -> dict[str, float]:
    """requests/s, p50 and p99 in ms of one ``wrk --latency`` run."""
    threads = min(2, connections)
    done = subprocess.run(
        [
            _wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m is not None, out
        return float(m.group(1)) * _UNITS[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests: {out}")
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "n": total}


def _measure(url: str, script: str, seconds: int, progress: Progress, prefix: str = "") -> Results:
    wrk(url, script, 16, 2)  # warm-up
    results: Results = {}
    lone = wrk(url, script, 1, seconds)
    progress(f"lone: p50 {lone['p50']:.2f} ms, p99 {lone['p99']:.2f} ms")
    results["c1_p50_ms"] = figure(lone["p50"], "ms", int(lone["n"]))
    results["c1_p99_ms"] = figure(lone["p99"], "ms", int(lone["n"]))
    busy = wrk(url, script, 16, seconds)
    progress(f"16 clients: {busy['rps']:.0f} req/s, p99 {busy['p99']:.1f} ms")
    results["c16_rps"] = figure(busy["rps"], "req/s", int(busy["n"]))
    results["c16_p99_ms"] = figure(busy["p99"], "ms", int(busy["n"]))
    return results


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    from loopline.models import save_model

    results: Results = {}
    seconds = sizes["seconds"]
    with temp_dir("serving-loopline") as folder:
        model, frame = _train()
        save_model(model, f"{folder}/model", input_example=frame.head(3))
        script = _script(folder)
        env = {**os.environ, "LOOPLINE_HOME": f"{folder}/home"}

        def serve(*extra: str) -> Server:
            port = free_port()
            argv = [sys.executable, "-m", "loopline.cli.main", "serve", f"{folder}/model"]
            argv += ["--name", "clf", "--port", str(port), *extra]
            return Server(
                argv, url=f"http://127.0.0.1:{port}", env=env, log_path=f"{folder}/serve.log"
            )

        def main_items() -> Results:
            with serve() as server:
                server.wait_healthy("/ping", 120)
                return _measure(f"{server.url}/invocations", script, seconds, progress)

        run_item(results, ["c1_p50_ms", "c1_p99_ms", "c16_rps", "c16_p99_ms"], progress, main_items)

        def batching() -> Results:
            # On and off alternate, twice: on a shared machine the load moves between runs,
            # and one run of each would compare the load as much as the batching.
            got: dict[str, list[dict[str, float]]] = {
                "c64_batch_on_rps": [],
                "c64_batch_off_rps": [],
            }
            for _ in range(2):
                for key, extra in (
                    ("c64_batch_on_rps", ()),
                    ("c64_batch_off_rps", ("--max-batch-size", "1")),
                ):
                    with serve(*extra) as server:
                        server.wait_healthy("/ping", 120)
                        wrk(f"{server.url}/invocations", script, 64, 2)
                        one = wrk(f"{server.url}/invocations", script, 64, seconds)
                    progress(f"64 clients, {key}: {one['rps']:.0f} req/s, p99 {one['p99']:.1f} ms")
                    got[key].append(one)
            out: Results = {}
            for key, runs in got.items():
                rps = sorted(r["rps"] for r in runs)
                note = "mean of 2 alternating runs: " + ", ".join(f"{v:,.0f}" for v in rps)
                n = int(sum(r["n"] for r in runs))
                out[key] = figure(sum(rps) / len(rps), "req/s", n, note)
            return out

        run_item(results, ["c64_batch_on_rps", "c64_batch_off_rps"], progress, batching)
    return results


def run_mlflow(sizes: dict[str, int], progress: Progress) -> Results:
    for name, value in PEER_ENV["mlflow"].items():
        os.environ.setdefault(name, value)
    import mlflow.sklearn

    results: Results = {}
    with temp_dir("serving-mlflow") as folder:
        model, frame = _train()
        mlflow.sklearn.save_model(model, f"{folder}/model", input_example=frame.head(3))
        script = _script(folder)
        port = free_port()
        argv = ["mlflow", "models", "serve", "-m", f"{folder}/model", "-p", str(port)]
        argv += ["--env-manager", "local", "--host", "127.0.0.1"]

        def items() -> Results:
            with Server(
                argv,
                url=f"http://127.0.0.1:{port}",
                env=dict(os.environ),
                log_path=f"{folder}/serve.log",
            ) as server:
                server.wait_healthy("/ping", 180)
                return _measure(f"{server.url}/invocations", script, sizes["seconds"], progress)

        run_item(results, ["c1_p50_ms", "c1_p99_ms", "c16_rps", "c16_p99_ms"], progress, items)
    return results


SIDES = {"loopline": run_loopline, "mlflow": run_mlflow}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

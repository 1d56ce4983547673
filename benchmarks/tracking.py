"""Experiment tracking, loopline vs MLflow, each on a fresh temporary store per item.

1. N metric points, one ``log_metric`` call each, into the embedded store, final
   flush included (MLflow: SQLite backend, synchronous and ``synchronous=False``).
2. ``log_metric`` call overhead, p50/p99 of ``perf_counter_ns`` around each call.
3. The same points through a tracking server over HTTP.
4. Runs with 10 params and 10 metrics each (start_run, log_params, log_metrics, end_run).
5. ``search_runs`` with a filter and an order, returning a DataFrame: p50 of repeated calls.

MLflow logs about 90 points/s here, so it is measured on fewer points and runs;
rates are compared, and every figure carries its N.

Run one side: ``python benchmarks/tracking.py --side mlflow --json``; both sides and
the table: ``python benchmarks/run.py --only tracking``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script, possibly by a peer's interpreter
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Deadline,
    Goal,
    Progress,
    Results,
    Row,
    Server,
    error_figure,
    figure,
    free_port,
    loopline_store,
    percentile,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

RunSpec = tuple[dict[str, str], dict[str, float]]

NAME = "tracking"
PEERS = {"mlflow": ["mlflow==3.17.*"]}
PEER_ENV = {"mlflow": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}}
PACKAGES = {
    "loopline": ["loopline", "sqlalchemy", "pandas", "httpx", "uvicorn"],
    "mlflow": ["mlflow", "sqlalchemy", "pandas"],
}

# Every count the benchmark uses; --quick divides them by 10.
SIZES = {
    "points": 100_000,  # loopline, embedded and over HTTP
    "overhead_calls": 100_000,  # loopline, timed one by one
    "mlflow_points_sync": 500,  # also timed one by one for MLflow's call overhead
    "mlflow_points_async": 2_000,
    "mlflow_http_points": 200,
    "runs": 1_000,
    "mlflow_runs": 100,
    "search_runs_small": 1_000,  # both sides
    "search_runs": 10_000,  # loopline only: MLflow needs minutes to create them
    "search_repeats": 10,
}
QUICK_FLOORS = {"search_repeats": 5, "mlflow_http_points": 50, "mlflow_points_sync": 100}

LOOP_SECONDS = 120.0  # every timed loop stops here, whatever its N
SETUP_SECONDS = 300.0  # creating the runs that search_runs searches
SERVER_START_SECONDS = 120.0

FILTER = "metrics.m0 > 0.5 and params.p0 = 'a'"
ORDER_BY = ["metrics.m1 DESC"]
SEARCH_PARAMS = 5
SEARCH_METRICS = 5

ROWS = [
    Row(
        label="log_metric, one point per call, embedded store, flush included "
        "(MLflow: SQLite, synchronous)",
        ours="log_metric_rate",
        peer="mlflow",
        theirs="log_metric_rate",
        higher_is_better=True,
        goal=Goal("speedup", 1000, ">= 1,000x MLflow sync"),
    ),
    Row(
        label="  the same, against MLflow's synchronous=False + flush_async_logging()",
        ours="log_metric_rate",
        peer="mlflow",
        theirs="log_metric_async_rate",
        higher_is_better=True,
        goal=Goal("speedup", 10, ">= 10x MLflow async"),
    ),
    Row(
        label="log_metric call overhead, p50",
        ours="log_metric_p50_us",
        peer="mlflow",
        theirs="log_metric_p50_us",
        higher_is_better=False,
    ),
    Row(
        label="log_metric call overhead, p99",
        ours="log_metric_p99_us",
        peer="mlflow",
        theirs="log_metric_p99_us",
        higher_is_better=False,
        goal=Goal("max", 20, "p99 < 20 µs"),
    ),
    Row(
        label="log_metric, one point per call, through the server over HTTP, flush included",
        ours="http_rate",
        peer="mlflow",
        theirs="http_rate",
        higher_is_better=True,
        goal=Goal("min", 50_000, ">= 50,000 points/s"),
    ),
    Row(
        label="server start-up until /health answers",
        ours="server_startup_s",
        peer="mlflow",
        theirs="server_startup_s",
        higher_is_better=False,
    ),
    Row(
        label="runs with 10 params + 10 metrics (start_run, log_params, log_metrics, end_run)",
        ours="runs_rate",
        peer="mlflow",
        theirs="runs_rate",
        higher_is_better=True,
        goal=Goal("speedup", 50, ">= 50x MLflow"),
    ),
    Row(
        label="search_runs, filter + order -> DataFrame, p50, {search_runs_small:,} runs",
        ours="search_small_p50_ms",
        peer="mlflow",
        theirs="search_small_p50_ms",
        higher_is_better=False,
    ),
    Row(
        label="search_runs, filter + order -> DataFrame, p50, {search_runs:,} runs",
        ours="search_p50_ms",
        peer="mlflow",
        theirs=None,
        higher_is_better=False,
        goal=Goal("max", 100, "p50 < 100 ms"),
    ),
]


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, QUICK_FLOORS)


# -- data shared by both sides -------------------------------------------------------
def search_data(n: int, seed: int = 7) -> list[RunSpec]:
    """Params and metrics of the runs ``search_runs`` searches (same for both sides)."""
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        params = {"p0": rng.choice("ab")}
        params |= {f"p{j}": f"v{i % 97}-{j}" for j in range(1, SEARCH_PARAMS)}
        metrics = {f"m{j}": rng.random() for j in range(SEARCH_METRICS)}
        runs.append((params, metrics))
    return runs


def expected_matches(runs: list[RunSpec]) -> int:
    return sum(1 for p, m in runs if m["m0"] > 0.5 and p["p0"] == "a")


def run_data(n: int) -> list[RunSpec]:
    """10 params and 10 metrics for each of ``n`` runs."""
    rng = random.Random(3)
    return [
        ({f"p{j}": f"value-{i}-{j}" for j in range(10)}, {f"m{j}": rng.random() for j in range(10)})
        for i in range(n)
    ]


def _timed_search(search: Any, repeats: int, expected: int, deadline: Deadline) -> list[float]:
    samples: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = search()
        samples.append((time.perf_counter() - t0) * 1000)
        if len(frame) != expected:
            raise AssertionError(f"search_runs returned {len(frame)} runs, expected {expected}")
        m1 = frame["metrics.m1"].tolist()
        if m1 != sorted(m1, reverse=True):
            raise AssertionError("search_runs did not order by metrics.m1 DESC")
        if deadline.expired():
            break
    return samples


def _search_figures(key: str, samples: list[float], runs: int, matched: int) -> Results:
    note = (
        f"{runs:,} runs in the store, {matched:,} returned; "
        f"min {min(samples):.1f} ms, max {max(samples):.1f} ms over {len(samples)} calls"
    )
    return {key: figure(percentile(samples, 50), "ms", runs, note)}


# == loopline ==========================================================================
def _loopline_points(ll: Any, n: int) -> tuple[int, float, str]:
    """Log ``n`` points one call at a time and flush; (points, seconds, run id)."""
    ll.set_experiment("bench")
    run_id = ll.start_run().info.run_id
    log, deadline, done = ll.log_metric, Deadline(LOOP_SECONDS), 0
    t0 = time.perf_counter()
    while done < n and not deadline.expired():
        stop = min(n, done + 1024)
        for step in range(done, stop):
            log("loss", step * 0.5, step=step)
        done = stop
    ll.flush()
    elapsed = time.perf_counter() - t0
    ll.end_run()
    stored = len(ll.get_metric_history(run_id, "loss"))
    if stored != done:
        raise AssertionError(f"logged {done} points, the store holds {stored}")
    return done, elapsed, run_id


def loopline_log_metric(sizes: dict[str, int], progress: Progress) -> Results:
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        done, elapsed, _ = _loopline_points(ll, sizes["points"])
    progress(f"log_metric: {done:,} points in {elapsed:.3f} s")
    return {"log_metric_rate": figure(done / elapsed, "points/s", done)}


def loopline_overhead(sizes: dict[str, int], progress: Progress) -> Results:
    n = sizes["overhead_calls"]
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        ll.set_experiment("bench")
        ll.start_run()
        log, ns, samples = ll.log_metric, time.perf_counter_ns, [0] * n
        deadline, done = Deadline(LOOP_SECONDS), 0
        while done < n and not deadline.expired():
            for i in range(done, min(n, done + 1024)):
                t0 = ns()
                log("loss", i * 0.5, step=i)
                samples[i] = ns() - t0
            done = min(n, done + 1024)
        ll.end_run()
    del samples[done:]
    p50, p99 = percentile(samples, 50) / 1000, percentile(samples, 99) / 1000
    progress(f"log_metric overhead: p50 {p50:.2f} µs, p99 {p99:.2f} µs over {done:,} calls")
    note = f"max {max(samples) / 1000:.0f} µs (background writer running)"
    return {
        "log_metric_p50_us": figure(p50, "µs", done),
        "log_metric_p99_us": figure(p99, "µs", done, note),
    }


def _loopline_server_candidates(port: int, db_url: str, blobs: str) -> list[tuple[str, list[str]]]:
    """Ways to start a loopline server, best first: the CLI, ``serve()``, the app factory."""
    exe = Path(sys.executable).with_name("loopline")
    host = "127.0.0.1"
    serve = (
        "from loopline.server.run import serve; "
        f"serve(host={host!r}, port={port}, backend_uri={db_url!r}, artifacts_uri={blobs!r})"
    )
    factory = (
        "import uvicorn\n"
        "from loopline.config import get_settings\n"
        "from loopline.client.factory import open_service\n"
        "from loopline.server.app import create_app\n"
        f"s = get_settings().with_(tracking_uri={db_url!r}, artifacts_uri={blobs!r})\n"
        f"uvicorn.run(create_app(open_service(s)), host={host!r}, port={port}, "
        "log_level='warning')\n"
    )
    args = ["--host", host, "--port", str(port), "--backend-uri", db_url, "--artifacts-uri", blobs]
    return [
        ("`loopline server`", [str(exe), "server", *args]),
        ("loopline.server.run.serve()", [sys.executable, "-c", serve]),
        ("create_app() under uvicorn.run", [sys.executable, "-c", factory]),
    ]


@contextlib.contextmanager
def loopline_server(tmp: str, progress: Progress) -> Iterator[tuple[str, Server, str]]:
    """A running loopline server on a free port: (url, server, how it was started).

    Tries each way in turn (the CLI may not exist yet in a young checkout) and says
    which one answered.
    """
    env = {**os.environ, "LOOPLINE_HOME": f"{tmp}/server-home"}
    env.pop("LOOPLINE_TRACKING_URI", None)
    db_url, blobs = f"sqlite:///{tmp}/server.db", f"{tmp}/blobs"
    failures: list[str] = []
    for attempt in range(len(_loopline_server_candidates(0, db_url, blobs))):
        port = free_port()
        how, argv = _loopline_server_candidates(port, db_url, blobs)[attempt]
        url = f"http://127.0.0.1:{port}"
        server = Server(argv, url=url, env=env, log_path=f"{tmp}/server-{attempt}.log", cwd=tmp)
        server.__enter__()
        try:
            server.wait_healthy("/health", SERVER_START_SECONDS)
        except (RuntimeError, TimeoutError, OSError) as exc:
            server.stop()
            last = (str(exc).strip().splitlines() or [repr(exc)])[-1]
            failures.append(f"{how}: {last}")
            progress(f"could not start a server via {how} ({last}); trying the next way")
            continue
        progress(f"server up via {how} in {server.startup_seconds:.1f} s")
        try:
            yield url, server, how
        finally:
            server.stop()
        return
    raise RuntimeError("no way to start a loopline server worked: " + " | ".join(failures))


def loopline_http(sizes: dict[str, int], progress: Progress) -> Results:
    with temp_dir("loopline-bench-") as tmp:
        with loopline_server(tmp, progress) as (url, server, how):
            assert server.startup_seconds is not None
            results = {"server_startup_s": figure(server.startup_seconds, "s", 1, how)}
            try:
                with loopline_store(f"{tmp}/client-home", url) as ll:
                    done, elapsed, _ = _loopline_points(ll, sizes["points"])
            except Exception as exc:  # the start-up figure stands; the error is reported
                return results | {"http_rate": error_figure(exc, progress, "http_rate")}
        progress(f"HTTP: {done:,} points in {elapsed:.3f} s")
        note = f"server started via {how}"
        return results | {"http_rate": figure(done / elapsed, "points/s", done, note)}


def loopline_runs(sizes: dict[str, int], progress: Progress) -> Results:
    data = run_data(sizes["runs"])
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        ll.set_experiment("bench")
        deadline, done = Deadline(LOOP_SECONDS), 0
        t0 = time.perf_counter()
        for params, metrics in data:
            ll.start_run()
            ll.log_params(params)
            ll.log_metrics(metrics)
            ll.end_run()
            done += 1
            if deadline.expired():
                break
        ll.flush()  # end_run does not wait for the write: count it in
        elapsed = time.perf_counter() - t0
        stored = len(ll.search_runs(output_format="list"))
        if stored != done:
            raise AssertionError(f"created {done} runs, the store holds {stored}")
    progress(f"runs: {done:,} in {elapsed:.2f} s")
    return {"runs_rate": figure(done / elapsed, "runs/s", done)}


def _loopline_create(ll: Any, runs: list[RunSpec], deadline: Deadline) -> None:
    for params, metrics in runs:
        ll.start_run()
        ll.log_params(params)
        ll.log_metrics(metrics)
        ll.end_run()
        if deadline.expired():
            raise TimeoutError(f"creating runs for search_runs took over {deadline.seconds:.0f} s")


def loopline_search(sizes: dict[str, int], progress: Progress) -> Results:
    small, large = sizes["search_runs_small"], sizes["search_runs"]
    repeats = sizes["search_repeats"]
    data = search_data(max(small, large))
    results: Results = {}
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        exp_id = ll.set_experiment("bench").experiment_id
        setup = Deadline(SETUP_SECONDS)
        created = 0
        for n, key in ((small, "search_small_p50_ms"), (large, "search_p50_ms")):
            t0 = time.perf_counter()
            _loopline_create(ll, data[created:n], setup)
            ll.flush()  # the runs are stored before the searches are timed
            progress(f"search: created {n - created:,} runs in {time.perf_counter() - t0:.1f} s")
            created = n
            expected = expected_matches(data[:n])

            def search() -> Any:
                return ll.search_runs([exp_id], filter_string=FILTER, order_by=ORDER_BY)

            samples = _timed_search(search, repeats, expected, Deadline(LOOP_SECONDS))
            results |= _search_figures(key, samples, n, expected)
            progress(f"search over {n:,} runs: p50 {percentile(samples, 50):.1f} ms")
    return results


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    for fn, keys in (
        (loopline_log_metric, ["log_metric_rate"]),
        (loopline_overhead, ["log_metric_p50_us", "log_metric_p99_us"]),
        (loopline_http, ["http_rate", "server_startup_s"]),
        (loopline_runs, ["runs_rate"]),
        (loopline_search, ["search_small_p50_ms", "search_p50_ms"]),
    ):
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


# == MLflow ============================================================================
def _mlflow_store(tmp: str, uri: str | None = None) -> str:
    """Point MLflow at a fresh SQLite store (or a server) with an experiment; its id."""
    import mlflow

    mlflow.set_tracking_uri(uri or f"sqlite:///{tmp}/mlflow.db")
    exp_id = mlflow.create_experiment("bench", artifact_location=Path(tmp, "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def _mlflow_points(
    n: int, *, synchronous: bool, timed_calls: list[int] | None = None
) -> tuple[int, float]:
    import mlflow

    with mlflow.start_run() as run:
        deadline, done, ns = Deadline(LOOP_SECONDS), 0, time.perf_counter_ns
        t0 = time.perf_counter()
        for step in range(n):
            c0 = ns()
            mlflow.log_metric("loss", step * 0.5, step=step, synchronous=synchronous)
            if timed_calls is not None:
                timed_calls.append(ns() - c0)
            done += 1
            if deadline.expired():
                break
        if not synchronous:
            mlflow.flush_async_logging()
        elapsed = time.perf_counter() - t0
    stored = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    if stored != done:
        raise AssertionError(f"logged {done} points, MLflow holds {stored}")
    return done, elapsed


def mlflow_log_metric(sizes: dict[str, int], progress: Progress) -> Results:
    calls: list[int] = []
    with temp_dir("mlflow-bench-") as tmp:
        _mlflow_store(tmp)
        n = sizes["mlflow_points_sync"]
        done, elapsed = _mlflow_points(n, synchronous=True, timed_calls=calls)
    progress(f"log_metric (sync): {done:,} points in {elapsed:.2f} s")
    p50, p99 = percentile(calls, 50) / 1000, percentile(calls, 99) / 1000
    return {
        "log_metric_rate": figure(done / elapsed, "points/s", done, "synchronous=True (default)"),
        "log_metric_p50_us": figure(p50, "µs", done),
        "log_metric_p99_us": figure(p99, "µs", done, "timed within the synchronous run"),
    }


def mlflow_log_metric_async(sizes: dict[str, int], progress: Progress) -> Results:
    with temp_dir("mlflow-bench-") as tmp:
        _mlflow_store(tmp)
        done, elapsed = _mlflow_points(sizes["mlflow_points_async"], synchronous=False)
    progress(f"log_metric (async): {done:,} points in {elapsed:.2f} s")
    note = "synchronous=False + flush_async_logging()"
    return {"log_metric_async_rate": figure(done / elapsed, "points/s", done, note)}


def mlflow_http(sizes: dict[str, int], progress: Progress) -> Results:
    with temp_dir("mlflow-bench-") as tmp:
        port = free_port()
        argv = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", f"sqlite:///{tmp}/server.db",
            "--artifacts-destination", f"{tmp}/mlartifacts",
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        log = f"{tmp}/server.log"
        with Server(argv, url=url, env=dict(os.environ), log_path=log, cwd=tmp) as server:
            startup = server.wait_healthy("/health", SERVER_START_SECONDS)
            progress(f"mlflow server up in {startup:.1f} s")
            results = {"server_startup_s": figure(startup, "s", 1, "`mlflow server`")}
            try:
                _mlflow_store(tmp, url)
                done, elapsed = _mlflow_points(sizes["mlflow_http_points"], synchronous=True)
            except Exception as exc:  # the start-up figure stands; the error is reported
                return results | {"http_rate": error_figure(exc, progress, "http_rate")}
        progress(f"HTTP: {done:,} points in {elapsed:.2f} s")
        note = "`mlflow server`, default (4) workers"
        return results | {"http_rate": figure(done / elapsed, "points/s", done, note)}


def mlflow_runs(sizes: dict[str, int], progress: Progress) -> Results:
    import mlflow

    data = run_data(sizes["mlflow_runs"])
    with temp_dir("mlflow-bench-") as tmp:
        exp_id = _mlflow_store(tmp)
        deadline, done = Deadline(LOOP_SECONDS), 0
        t0 = time.perf_counter()
        for params, metrics in data:
            mlflow.start_run()
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            mlflow.end_run()
            done += 1
            if deadline.expired():
                break
        elapsed = time.perf_counter() - t0
        stored = len(mlflow.search_runs([exp_id]))
        if stored != done:
            raise AssertionError(f"created {done} runs, MLflow holds {stored}")
    progress(f"runs: {done:,} in {elapsed:.2f} s")
    return {"runs_rate": figure(done / elapsed, "runs/s", done)}


def mlflow_search(sizes: dict[str, int], progress: Progress) -> Results:
    import mlflow
    from mlflow.entities import Metric, Param

    n, repeats = sizes["search_runs_small"], sizes["search_repeats"]
    data = search_data(n)
    with temp_dir("mlflow-bench-") as tmp:
        exp_id = _mlflow_store(tmp)
        client, setup = mlflow.MlflowClient(), Deadline(SETUP_SECONDS)
        t0 = time.perf_counter()
        for params, metrics in data:  # the quickest way MLflow has: one log_batch per run
            run_id = client.create_run(exp_id).info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )
            client.set_terminated(run_id)
            if setup.expired():
                raise TimeoutError(f"creating runs for search_runs took over {SETUP_SECONDS:.0f} s")
        progress(f"search: created {n:,} runs in {time.perf_counter() - t0:.1f} s (log_batch)")
        expected = expected_matches(data)

        def search() -> Any:
            return mlflow.search_runs([exp_id], filter_string=FILTER, order_by=ORDER_BY)

        samples = _timed_search(search, repeats, expected, Deadline(LOOP_SECONDS))
    progress(f"search over {n:,} runs: p50 {percentile(samples, 50):.1f} ms")
    return _search_figures("search_small_p50_ms", samples, n, expected)


def run_mlflow(sizes: dict[str, int], progress: Progress) -> Results:
    for name, value in PEER_ENV["mlflow"].items():
        os.environ.setdefault(name, value)
    results: Results = {}
    for fn, keys in (
        (mlflow_log_metric, ["log_metric_rate", "log_metric_p50_us", "log_metric_p99_us"]),
        (mlflow_log_metric_async, ["log_metric_async_rate"]),
        (mlflow_http, ["http_rate", "server_startup_s"]),
        (mlflow_runs, ["runs_rate"]),
        (mlflow_search, ["search_small_p50_ms"]),
    ):
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


SIDES = {"loopline": run_loopline, "mlflow": run_mlflow}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

"""The model registry, loopline vs MLflow, each in-process on a fresh SQLite store.

1. Registry reads through the SDK, p50 and p99 of ``perf_counter_ns`` around each call,
   over a model with ``versions`` versions and an alias:
   - resolve an alias (loopline ``resolve("bench@champion")``; MLflow
     ``get_model_version_by_alias``);
   - get a version by number; get the registered model; list the model's versions
     (MLflow ``search_model_versions("name='bench'")``).
2. Registry writes: move an alias; register a new version.
3. Materialise a ``download_mb`` MB model version from the store (loopline
   ``download_model``, digests verified; MLflow ``mlflow.artifacts.download_artifacts``
   of ``models:/NAME/1`` from its local artifact store), next to a plain
   ``shutil.copyfile`` of the same file on the same disk: "close to disk speed".

Run one side: ``python benchmarks/models.py --side mlflow --json``; both sides and the
table: ``python benchmarks/run.py --only models``.
"""

from __future__ import annotations

import os
import random
import shutil
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
    figure,
    loopline_store,
    percentile,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NAME = "models"
PEERS = {"mlflow": ["mlflow==3.17.*"]}
PEER_ENV = {"mlflow": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}}
PACKAGES = {
    "loopline": ["loopline", "sqlalchemy"],
    "mlflow": ["mlflow", "sqlalchemy"],
}

SIZES = {
    "versions": 20,  # versions of the benchmarked model
    "reads": 2_000,  # timed calls per read item (loopline)
    "mlflow_reads": 300,  # MLflow takes milliseconds per call
    "writes": 200,
    "mlflow_writes": 50,
    "download_mb": 100,
}
QUICK_FLOORS = {"versions": 5, "reads": 50, "mlflow_reads": 20, "writes": 10, "mlflow_writes": 5}

LOOP_SECONDS = 60.0
DOWNLOAD_ROUNDS = 3
READS = ("resolve_alias", "get_version", "get_model", "list_versions")
WRITES = ("set_alias", "register")


def _rows() -> list[Row]:
    rows: list[Row] = []
    labels = {
        "resolve_alias": "resolve an alias (NAME@champion) through the SDK",
        "get_version": "get a version by number",
        "get_model": "get the registered model (tags, aliases, latest version)",
        "list_versions": "list the model's {versions} versions",
        "set_alias": "move an alias (history and event recorded)",
        "register": "register a new version (files copied)",
    }
    for item, label in labels.items():
        read = item in READS
        rows.append(
            Row(
                label=f"{label}, p50",
                ours=f"{item}_p50_ms",
                peer="mlflow",
                theirs=f"{item}_p50_ms",
                higher_is_better=False,
                goal=Goal("max", 5, "p50 < 5 ms") if read else None,
            )
        )
        if read:
            rows.append(
                Row(
                    label="  the same, against MLflow's registry on SQLite",
                    ours=f"{item}_p50_ms",
                    peer="mlflow",
                    theirs=f"{item}_p50_ms",
                    higher_is_better=False,
                    goal=Goal("speedup", 5, ">= 5x MLflow"),
                )
            )
    rows += [
        Row(
            label="materialise a {download_mb} MB model version from the store",
            ours="download_mb_s",
            peer="mlflow",
            theirs="download_mb_s",
            higher_is_better=True,
        ),
        Row(
            label="  the same, against a plain file copy on this disk (loopline side)",
            ours="download_vs_copy",
            peer="mlflow",
            theirs=None,
            higher_is_better=True,
            goal=Goal("min", 0.5, ">= 0.5 of disk copy"),
        ),
    ]
    return rows


ROWS = _rows()


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, QUICK_FLOORS)


def _timed(call: Callable[[int], Any], n: int) -> list[float]:
    """Milliseconds per call of ``call(i)`` for i in range(n) (stops at LOOP_SECONDS)."""
    ns, samples, deadline = time.perf_counter_ns, [], Deadline(LOOP_SECONDS)
    for i in range(n):
        t0 = ns()
        call(i)
        samples.append((ns() - t0) / 1e6)
        if deadline.expired():
            break
    return samples


def _latency(key: str, samples: list[float], note: str = "") -> Results:
    p99 = percentile(samples, 99)
    extra = f"p99 {p99:.2f} ms" + (f"; {note}" if note else "")
    return {f"{key}_p50_ms": figure(percentile(samples, 50), "ms", len(samples), extra)}


def _big_file(folder: str, mb: int) -> Path:
    path = Path(folder, "src", "model.bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(block)
    return path


def _copy_rate(source: Path, folder: str) -> float:
    """MB/s of a plain copy of ``source`` (the disk's speed here)."""
    target = Path(folder, "copy", source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shutil.copyfile(source, target)
    elapsed = time.perf_counter() - t0
    target.unlink()
    return source.stat().st_size / 1e6 / elapsed


# == loopline ==========================================================================
def _loopline_model(ll: Any, versions: int, weights: bytes = b"w" * 1024) -> str:
    """A run with a small model folder registered ``versions`` times; the run id."""
    import loopline.registry as registry

    with ll.start_run() as run:
        ll.log_text("flavor: sklearn\n", "model/loopline-model.yaml")
        client = ll.get_client()
        client.log_bytes(run.info.run_id, weights, "model/weights.bin")
    uri = f"runs:/{run.info.run_id}/model"
    for _ in range(versions):
        registry.register_model(uri, "bench")
    registry.set_alias("bench", "champion", max(1, versions // 2))
    return uri


def loopline_reads(sizes: dict[str, int], progress: Progress) -> Results:
    import loopline.registry as registry

    n, versions = sizes["reads"], sizes["versions"]
    rng = random.Random(1)
    numbers = [rng.randint(1, versions) for _ in range(n)]
    calls: dict[str, Callable[[int], Any]] = {
        "resolve_alias": lambda i: registry.resolve("bench@champion"),
        "get_version": lambda i: registry.get_model_version("bench", numbers[i]),
        "get_model": lambda i: registry.get_registered_model("bench"),
        "list_versions": lambda i: registry.list_versions("bench"),
    }
    results: Results = {}
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        _loopline_model(ll, versions)
        if registry.resolve("bench@champion").version != max(1, versions // 2):
            raise AssertionError("the alias resolved to the wrong version")
        if len(registry.list_versions("bench")) != versions:
            raise AssertionError("list_versions lost versions")
        for key, call in calls.items():
            call(0)  # warm: connections, statement caches
            samples = _timed(call, n)
            results |= _latency(key, samples, "embedded SQLite store")
            progress(f"{key}: p50 {percentile(samples, 50):.3f} ms over {len(samples):,} calls")
    return results


def loopline_writes(sizes: dict[str, int], progress: Progress) -> Results:
    import loopline.registry as registry

    n, versions = sizes["writes"], sizes["versions"]
    results: Results = {}
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        uri = _loopline_model(ll, versions)
        moves = _timed(lambda i: registry.set_alias("bench", "champion", 1 + i % versions), n)
        results |= _latency("set_alias", moves)
        regs = _timed(lambda i: registry.register_model(uri, "bench"), n)
        results |= _latency("register", regs, "2-file model")
        if len(registry.alias_history("bench", "champion")) < len(moves):
            raise AssertionError("alias moves missing from the history")
    progress(
        f"set_alias p50 {percentile(moves, 50):.2f} ms, register p50 {percentile(regs, 50):.2f} ms"
    )
    return results


def loopline_download(sizes: dict[str, int], progress: Progress) -> Results:
    import statistics

    import loopline.registry as registry

    mb = sizes["download_mb"]
    rates, copies = [], []
    with temp_dir("loopline-bench-") as home, loopline_store(home) as ll:
        source = _big_file(home, mb)
        with ll.start_run() as run:
            ll.log_artifact(str(source), "model")
        registry.register_model(f"runs:/{run.info.run_id}/model", "big")
        for attempt in range(DOWNLOAD_ROUNDS):  # alternated: both see the same cache state
            copies.append(_copy_rate(source, home))
            t0 = time.perf_counter()
            out = registry.download_model("models:/big/1", Path(home, f"out-{attempt}"))
            rates.append(mb * 1024 * 1024 / 1e6 / (time.perf_counter() - t0))
            if (out / "model.bin").stat().st_size != mb * 1024 * 1024:
                raise AssertionError("the downloaded model has the wrong size")
            shutil.rmtree(out)
    rate, copy_rate = statistics.median(rates), statistics.median(copies)
    progress(f"download: {rate:,.0f} MB/s (plain copy {copy_rate:,.0f} MB/s)")
    note = f"digest verified; median of {DOWNLOAD_ROUNDS}; plain copy {copy_rate:,.0f} MB/s"
    return {
        "download_mb_s": figure(rate, "MB/s", mb, note),
        "download_vs_copy": figure(rate / copy_rate, "x", mb, "loopline download / shutil copy"),
    }


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    for fn, keys in (
        (loopline_reads, [f"{k}_p50_ms" for k in READS]),
        (loopline_writes, [f"{k}_p50_ms" for k in WRITES]),
        (loopline_download, ["download_mb_s", "download_vs_copy"]),
    ):
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


# == MLflow ============================================================================
def _mlflow_store(tmp: str) -> Any:
    import mlflow

    uri = f"sqlite:///{tmp}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp_id = mlflow.create_experiment("bench", artifact_location=Path(tmp, "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    return mlflow.MlflowClient()


def _mlflow_model(client: Any, tmp: str, versions: int) -> str:
    source = Path(tmp, "model")
    source.mkdir(parents=True, exist_ok=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "weights.bin").write_bytes(b"w" * 1024)
    client.create_registered_model("bench")
    for _ in range(versions):
        client.create_model_version("bench", source.as_uri(), run_id=None)
    client.set_registered_model_alias("bench", "champion", max(1, versions // 2))
    return source.as_uri()


def mlflow_reads(sizes: dict[str, int], progress: Progress) -> Results:
    n, versions = sizes["mlflow_reads"], sizes["versions"]
    rng = random.Random(1)
    numbers = [rng.randint(1, versions) for _ in range(n)]
    results: Results = {}
    with temp_dir("mlflow-bench-") as tmp:
        client = _mlflow_store(tmp)
        _mlflow_model(client, tmp, versions)
        calls: dict[str, Callable[[int], Any]] = {
            "resolve_alias": lambda i: client.get_model_version_by_alias("bench", "champion"),
            "get_version": lambda i: client.get_model_version("bench", str(numbers[i])),
            "get_model": lambda i: client.get_registered_model("bench"),
            "list_versions": lambda i: client.search_model_versions("name='bench'"),
        }
        for key, call in calls.items():
            call(0)
            samples = _timed(call, n)
            results |= _latency(key, samples, "MlflowClient, SQLite backend")
            progress(f"{key}: p50 {percentile(samples, 50):.3f} ms over {len(samples):,} calls")
    return results


def mlflow_writes(sizes: dict[str, int], progress: Progress) -> Results:
    n, versions = sizes["mlflow_writes"], sizes["versions"]
    results: Results = {}
    with temp_dir("mlflow-bench-") as tmp:
        client = _mlflow_store(tmp)
        source = _mlflow_model(client, tmp, versions)
        moves = _timed(
            lambda i: client.set_registered_model_alias("bench", "champion", 1 + i % versions), n
        )
        results |= _latency("set_alias", moves, "no history kept")
        regs = _timed(lambda i: client.create_model_version("bench", source, run_id=None), n)
        results |= _latency("register", regs, "records the source URI, copies nothing")
    progress(
        f"set_alias p50 {percentile(moves, 50):.2f} ms, register p50 {percentile(regs, 50):.2f} ms"
    )
    return results


def mlflow_download(sizes: dict[str, int], progress: Progress) -> Results:
    import statistics

    import mlflow

    mb = sizes["download_mb"]
    with temp_dir("mlflow-bench-") as tmp:
        client = _mlflow_store(tmp)
        source = _big_file(tmp, mb)
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(source), "model")
        client.create_registered_model("big")
        client.create_model_version("big", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        rates, copies = [], []
        for attempt in range(DOWNLOAD_ROUNDS):
            copies.append(_copy_rate(source, tmp))
            dst = Path(tmp, f"out-{attempt}")
            t0 = time.perf_counter()
            out = mlflow.artifacts.download_artifacts("models:/big/1", dst_path=str(dst))
            rates.append(mb * 1024 * 1024 / 1e6 / (time.perf_counter() - t0))
            if Path(out, "model.bin").stat().st_size != mb * 1024 * 1024:
                raise AssertionError("the downloaded model has the wrong size")
            shutil.rmtree(dst)
    rate, copy_rate = statistics.median(rates), statistics.median(copies)
    progress(f"download: {rate:,.0f} MB/s (plain copy {copy_rate:,.0f} MB/s)")
    note = f"local artifact store, not verified; median of {DOWNLOAD_ROUNDS}; plain copy {copy_rate:,.0f} MB/s"
    return {"download_mb_s": figure(rate, "MB/s", mb, note)}


def run_mlflow(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    for fn, keys in (
        (mlflow_reads, [f"{k}_p50_ms" for k in READS]),
        (mlflow_writes, [f"{k}_p50_ms" for k in WRITES]),
        (mlflow_download, ["download_mb_s"]),
    ):
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


SIDES = {"loopline": run_loopline, "mlflow": run_mlflow}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

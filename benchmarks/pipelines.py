"""Pipelines: cached re-runs, per-step overhead, a sweep's CPU use; Metaflow's local runtime.

Both sides run the same 10-step linear flow of trivial steps through their command
line (``loopline pipeline run`` / ``python flow.py run``): for trivial steps the
whole wall time is overhead. loopline also reports a fully cached re-run (in-process
and through the CLI), the per-step overhead of its local (process) executor, and
the CPU use of a 200-trial sweep of a fast objective on the local executor: raw,
and as a share of what one CPU-bound process per core gets right after (on a
machine shared with other work, 100 % of all cores is out of anyone's reach).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Goal,
    Progress,
    Results,
    Row,
    figure,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

NAME = "pipelines"
PEERS = {"metaflow": ["metaflow"]}
PEER_ENV = {"metaflow": {"USERNAME": "bench", "METAFLOW_DEFAULT_METADATA": "local"}}
PACKAGES = {"loopline": ["loopline", "optuna"], "metaflow": ["metaflow"]}
SIZES = {"steps": 10, "repeats": 3, "trials": 200}
ROOT = Path(__file__).resolve().parent.parent

ROWS = [
    Row(
        "10-step flow through the CLI (s, all overhead)",
        "cli_run_s",
        "metaflow",
        "cli_run_s",
        higher_is_better=False,
        goal=Goal("speedup", 5.0, ">= 5x less"),
    ),
    Row(
        "fully cached re-run, in-process (s)",
        "cached_inprocess_s",
        "metaflow",
        None,
        higher_is_better=False,
        goal=Goal("max", 0.3, "< 0.3 s"),
    ),
    Row(
        "fully cached re-run, CLI (s)",
        "cached_cli_s",
        "metaflow",
        None,
        higher_is_better=False,
        goal=Goal("max", 1.5, "< 1.5 s"),
    ),
    Row(
        "per-step overhead, local executor (ms)",
        "step_overhead_ms",
        "metaflow",
        None,
        higher_is_better=False,
        goal=Goal("max", 50.0, "< 50 ms"),
    ),
    Row(
        "{trials}-trial sweep, local executor: CPU use (% of all cores)",
        "sweep_cpu_pct",
        "metaflow",
        None,
        higher_is_better=True,
        goal=Goal("min", 80.0, ">= 80 %"),
    ),
    Row(
        "the same, as a share of what 2 CPU-bound processes got meanwhile (%)",
        "sweep_cpu_vs_ceiling_pct",
        "metaflow",
        None,
        higher_is_better=True,
        goal=Goal("min", 80.0, ">= 80 %"),
    ),
]

EXAMPLE = ROOT / "examples" / "pipelines" / "linear.py"
"""The flow loopline runs: its example pipeline (10 steps by default)."""

METAFLOW_FLOW = """
from metaflow import FlowSpec, step

class Linear(FlowSpec):
{body}

if __name__ == "__main__":
    Linear()
"""


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, {"steps": 10, "repeats": 1, "trials": 40})


def _metaflow_body(steps: int) -> str:
    names = ["start"] + [f"s{i}" for i in range(1, steps - 1)] + ["end"]
    parts = []
    for i, name in enumerate(names):
        nxt = f"        self.next(self.{names[i + 1]})\n" if i + 1 < len(names) else ""
        value = "        self.x = 0\n" if i == 0 else ("        self.x += 1\n" if nxt else "")
        parts.append(f"    @step\n    def {name}(self):\n{value or '        pass' + chr(10)}{nxt}")
    return "\n".join(parts)


def _timed(argv: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr[-800:]}")
    return seconds


def objective(params: dict[str, float]) -> float:
    total = 0.0
    for i in range(30_000):  # ~10 ms of pure Python: a fast objective
        total += (params["x"] - 1.0) ** 2 + i * 1e-9
    return total


def _burn(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        objective({"x": 0.0})


def cpu_ceiling(seconds: float) -> float:
    """CPU use (% of all cores) of one CPU-bound process per core, running ``seconds``.

    On a machine shared with other work this is what a perfectly parallel job gets;
    the sweep's CPU use is compared with it, measured right after under the same load.
    """
    import multiprocessing

    cores = len(os.sched_getaffinity(0))
    ctx = multiprocessing.get_context("fork")
    before, started = os.times(), time.perf_counter()
    procs = [ctx.Process(target=_burn, args=(seconds,)) for _ in range(cores)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    after, wall = os.times(), time.perf_counter() - started
    return 100 * (sum(after[2:4]) - sum(before[2:4])) / (wall * cores)


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    with temp_dir("bench-pipelines-") as tmp:
        flow = Path(tmp) / "flow.py"
        flow.write_text(EXAMPLE.read_text())
        env = {**os.environ, "LOOPLINE_HOME": f"{tmp}/home"}
        cli = [sys.executable, "-c", "from loopline.cli.main import main; main()"]

        def cli_items() -> Results:
            runs = [
                _timed([*cli, "pipeline", "run", str(flow), "--no-cache"], env, tmp)
                for _ in range(sizes["repeats"])
            ]
            cached = [
                _timed([*cli, "pipeline", "run", str(flow)], env, tmp)
                for _ in range(sizes["repeats"])
            ]
            progress(
                f"CLI run {statistics.median(runs):.2f} s, cached {statistics.median(cached):.2f} s"
            )
            return {
                "cli_run_s": figure(statistics.median(runs), "s", sizes["steps"]),
                "cached_cli_s": figure(statistics.median(cached), "s", sizes["steps"]),
            }

        run_item(results, ["cli_run_s", "cached_cli_s"], progress, cli_items)

        def in_process() -> Results:
            from benchmarks._harness import loopline_store

            with loopline_store(f"{tmp}/home2"):
                from loopline.pipelines.loader import load_pipeline

                pipe = load_pipeline(str(flow))
                pipe.run(executor="local")
                cached = []
                for _ in range(sizes["repeats"]):
                    started = time.perf_counter()
                    pipe.run(executor="local")
                    cached.append(time.perf_counter() - started)
                one = []
                full = []
                for _ in range(sizes["repeats"]):
                    started = time.perf_counter()
                    pipe.run(params={"steps": 1}, executor="local", cache=False)
                    one.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    pipe.run(executor="local", cache=False)
                    full.append(time.perf_counter() - started)
                per_step = (statistics.median(full) - statistics.median(one)) / (sizes["steps"] - 1)
                progress(
                    f"cached {statistics.median(cached):.3f} s, per step {per_step * 1000:.1f} ms"
                )
                return {
                    "cached_inprocess_s": figure(statistics.median(cached), "s", sizes["steps"]),
                    "step_overhead_ms": figure(
                        per_step * 1000,
                        "ms",
                        sizes["steps"],
                        "(10-step run - 1-step run) / 9, uncached",
                    ),
                }

        run_item(results, ["cached_inprocess_s", "step_overhead_ms"], progress, in_process)

        def sweep_cpu() -> Results:
            from benchmarks._harness import loopline_store

            with loopline_store(f"{tmp}/home3") as loopline:
                before, started = os.times(), time.perf_counter()
                loopline.sweep(
                    objective,
                    {"x": (-3.0, 3.0)},
                    n_trials=sizes["trials"],
                    executor="local",
                    direction="minimize",
                    seed=0,
                )
                after, wall = os.times(), time.perf_counter() - started
            cpu = sum(after[:4]) - sum(before[:4])
            cores = len(os.sched_getaffinity(0))
            pct = 100 * cpu / (wall * cores)
            ceiling = cpu_ceiling(min(wall, 5.0))
            progress(
                f"sweep: {wall:.1f} s wall, {cpu:.1f} s CPU on {cores} cores = {pct:.0f} %; "
                f"{cores} CPU-bound processes got {ceiling:.0f} %"
            )
            return {
                "sweep_cpu_pct": figure(pct, "%", sizes["trials"], f"{wall:.1f} s wall"),
                "sweep_cpu_vs_ceiling_pct": figure(
                    100 * pct / ceiling,
                    "%",
                    sizes["trials"],
                    f"{cores} CPU-bound processes got {ceiling:.0f} % of all cores",
                ),
            }

        run_item(results, ["sweep_cpu_pct", "sweep_cpu_vs_ceiling_pct"], progress, sweep_cpu)
    return results


def run_metaflow(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    with temp_dir("bench-metaflow-") as tmp:
        flow = Path(tmp) / "flow.py"
        flow.write_text(
            METAFLOW_FLOW.format(body=textwrap.indent(_metaflow_body(sizes["steps"]), ""))
        )
        env = {**os.environ, "METAFLOW_HOME": tmp, "USERNAME": "bench"}

        def item() -> Results:
            runs = [
                _timed([sys.executable, str(flow), "--quiet", "--no-pylint", "run"], env, tmp)
                for _ in range(sizes["repeats"])
            ]
            progress(f"metaflow run {statistics.median(runs):.2f} s")
            return {"cli_run_s": figure(statistics.median(runs), "s", sizes["steps"])}

        run_item(results, ["cli_run_s"], progress, item)
    return results


SIDES: dict[str, Any] = {"loopline": run_loopline, "metaflow": run_metaflow}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

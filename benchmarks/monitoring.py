"""Monitoring: the full drift report against Evidently's DataDriftPreset, and a 10M-row window.

Both sides build the same data (numpy, one seed): 100,000 rows of 20 numeric and 5
categorical columns, a current table with 4 numeric and 1 categorical column
shifted. Each side imports and warms up first, then times its full drift report
(automatic test per column, dataset verdict, JSON). Extra peak memory is the
process's peak resident size during the call (VmHWM, reset just before through
``/proc/self/clear_refs``) minus its resident size before it.

loopline alone: a 10,000,000-row prediction log (10 numeric + 2 categorical
inputs, Parquet files in loopline.predlog's layout) profiled in batches against a
stored reference profile and tested, in a fresh process whose peak resident size
(imports included) is the figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

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

NAME = "monitoring"
PEERS = {"evidently": ["evidently==0.7.23", "pandas<3"]}
PACKAGES = {
    "loopline": ["loopline", "numpy", "pandas", "scipy"],
    "evidently": ["evidently", "pandas"],
}
SIZES = {"rows": 100_000, "numeric": 20, "categorical": 5, "window_rows": 10_000_000}
QUICK_FLOORS = {"rows": 10_000, "numeric": 20, "categorical": 5, "window_rows": 1_000_000}

ROWS = [
    Row("drift report, {rows} rows x 25 columns (s, after import)", "report_s", "evidently",
        "report_s", higher_is_better=False, goal=Goal("speedup", 20, ">= 20x faster")),
    Row("  extra peak memory of the call (MiB)", "report_extra_mib", "evidently",
        "report_extra_mib", higher_is_better=False, goal=Goal("speedup", 4, "<= 1/4 of peer")),
    Row("{window_rows} rows against a stored profile: peak RSS (MiB)", "window_peak_mib",
        "evidently", None, higher_is_better=False, goal=Goal("max", 1024, "< 1 GiB")),
    Row("  same: seconds", "window_s", "evidently", None, higher_is_better=False),
]  # fmt: skip


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, QUICK_FLOORS)


def make_frames(sizes: dict[str, int]) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2026)
    n = sizes["rows"]

    def table(shift: float) -> Any:
        cols: dict[str, Any] = {}
        for i in range(sizes["numeric"]):
            cols[f"num_{i}"] = rng.normal(shift if i < 4 else 0.0, 1.0, n)
        for j in range(sizes["categorical"]):
            p = np.array([0.4, 0.3, 0.2, 0.1]) if not (shift and j == 0) else np.full(4, 0.25)
            cols[f"cat_{j}"] = rng.choice(["a", "b", "c", "d"], n, p=p)
        return pd.DataFrame(cols)

    return table(0.0), table(0.5)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def measure(call: Any) -> tuple[float, float]:
    """(seconds, extra peak MiB) of ``call()``."""
    before = _rss_kib("VmRSS:")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    return seconds, max(_rss_kib("VmHWM:") - before, 0) / 1024


def _report_results(seconds: float, extra: float, n: int) -> Results:
    return {"report_s": figure(seconds, "s", n), "report_extra_mib": figure(extra, "MiB", n)}


# -- loopline ------------------------------------------------------------------------------
def loopline_report(sizes: dict[str, int], progress: Progress) -> Results:
    import orjson

    from loopline.monitoring import drift

    ref, cur = make_frames(sizes)
    drift(ref.head(500), cur.head(500))  # warm-up: scipy and the threads are loaded
    progress("drift report")
    seconds, extra = measure(lambda: orjson.dumps(drift(ref, cur).to_dict()))
    return _report_results(seconds, extra, len(ref))


def _write_window(root: Path, rows: int, progress: Progress) -> Any:
    import numpy as np
    import pandas as pd

    from loopline.monitoring.profile import Profile
    from loopline.monitoring.simulate import write_predictions

    rng = np.random.default_rng(7)
    chunk = 500_000

    def frame(size: int, shift: float) -> Any:
        cols = {f"x{i}": rng.normal(shift if i < 2 else 0.0, 1.0, size) for i in range(10)}
        cols["c0"] = rng.choice(["a", "b", "c"], size)
        cols["c1"] = rng.choice(["u", "v", "w", "z"], size)
        return pd.DataFrame(cols)

    profile = Profile.of(frame(100_000, 0.0))
    (root / "profile.json").write_text(json.dumps(profile.to_dict()))
    for done in range(0, rows, chunk):
        size = min(chunk, rows - done)
        write_predictions(root, "bench", frame(size, 0.3),
                          request_ids=[f"r{i}" for i in range(size)])  # fmt: skip
        progress(f"wrote {done + size:,} rows")


def stream_window(root: str) -> None:
    """Run in a fresh process: prints seconds and peak RSS of profiling + testing the window."""
    from datetime import UTC, datetime, timedelta

    from loopline.monitoring import Profile, ProfileBuilder, drift
    from loopline.monitoring.window import WindowReader

    start = time.perf_counter()
    ref = Profile.from_dict(json.loads((Path(root) / "profile.json").read_text()))
    builder = ProfileBuilder(ref)
    reader = WindowReader(Path(root), "bench", "1d", datetime.now(UTC) + timedelta(minutes=1))
    for batch in reader.batches():
        builder.update(batch)
    result = drift(ref, builder.result())
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": builder.result().rows,
                      "peak_kib": _rss_kib("VmHWM:"), "drifted": result.drifted_columns}))  # fmt: skip


def loopline_window(sizes: dict[str, int], progress: Progress) -> Results:
    with temp_dir("bench-monitoring-") as tmp:
        _write_window(Path(tmp), sizes["window_rows"], progress)
        progress("streaming the window in a fresh process")
        code = f"from benchmarks.monitoring import stream_window; stream_window({tmp!r})"
        root = str(Path(__file__).resolve().parent.parent)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})  # fmt: skip
        doc = json.loads(out.stdout.strip().splitlines()[-1])
    n = int(doc["rows"])
    return {
        "window_peak_mib": figure(doc["peak_kib"] / 1024, "MiB", n),
        "window_s": figure(doc["seconds"], "s", n, f"drifted: {doc['drifted']}"),
    }


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}
    run_item(results, ["report_s", "report_extra_mib"], progress,
             lambda: loopline_report(sizes, progress))  # fmt: skip
    run_item(results, ["window_peak_mib", "window_s"], progress,
             lambda: loopline_window(sizes, progress))  # fmt: skip
    return results


# -- Evidently ---------------------------------------------------------------------------------
def run_evidently(sizes: dict[str, int], progress: Progress) -> Results:
    results: Results = {}

    def item() -> Results:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        ref, cur = make_frames(sizes)
        Report([DataDriftPreset()]).run(cur.head(500), ref.head(500)).json()  # warm-up
        progress("DataDriftPreset")
        seconds, extra = measure(lambda: Report([DataDriftPreset()]).run(cur, ref).json())
        return _report_results(seconds, extra, len(ref))

    run_item(results, ["report_s", "report_extra_mib"], progress, item)
    return results


SIDES = {"loopline": run_loopline, "evidently": run_evidently}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

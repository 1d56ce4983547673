"""The web UI in headless Chromium against a real ``loopline server`` on loopback.

1. First load of the runs view of an experiment with ``runs`` runs (5 params and 5
   metrics each), in a fresh browser profile each time (nothing cached): from the
   navigation until the grid shows the count and its first rows.
2. The run page of a run whose metric has ``points`` points: from the navigation
   until the chart is drawn (the server reads every point and downsamples with LTTB;
   the browser draws the kept points); and the server's share alone.
3. The built bundle: all assets, and what the first page loads (gzipped).

There is no peer side: MLflow's UI needs the full ``mlflow`` server and filling it
with 10,000 runs takes minutes at its logging rate (see BASELINES.md), so the goals
here are absolute. Run it with ``python benchmarks/run.py --only ui``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ui.chromium import CHROMIUM, CHROMIUM_ARGS

from benchmarks._harness import (
    Goal,
    Progress,
    Results,
    Row,
    Server,
    figure,
    free_port,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

NAME = "ui"
PEERS: dict[str, list[str]] = {}
PACKAGES = {"loopline": ["loopline", "playwright"]}
SIZES = {"runs": 10_000, "points": 100_000, "rounds": 3}


def sizes_for(quick: bool) -> dict[str, int]:
    sizes = scaled(SIZES, quick)
    sizes["rounds"] = SIZES["rounds"]
    return sizes


def _fill(home: str, runs: int, points: int, progress: Progress) -> tuple[str, str]:
    """An experiment of ``runs`` runs, and a run with a ``points``-point metric."""
    from loopline.client.client import Client
    from loopline.config import Settings

    client = Client(settings=Settings(home=Path(home)))
    try:
        experiment = client.create_experiment("ui-bench")
        for i in range(runs):
            info = client.new_run(experiment, run_name=f"run-{i}")
            client.log_batch(
                info.run_id,
                params={"model": ["rf", "gbm", "mlp"][i % 3], "lr": 10 ** -(i % 5), "depth": i % 9}
                | {"seed": i, "batch": 32 << (i % 4)},
                metrics=[
                    (key, ((i * 7919 + j) % 1000) / 1000, 0, 0)
                    for j, key in enumerate(("auc", "loss", "f1", "precision", "recall"))
                ],
            )
            client.set_terminated(info.run_id, "FINISHED", wait=False)
            if i % 2000 == 0:
                progress(f"filled {i} runs")
        long_run = client.new_run(experiment, run_name="long-curve")
        now = int(time.time() * 1000)
        client.log_batch(
            long_run.run_id,
            metrics=[
                ("loss", 1 / (1 + s / 1000) + (s % 97) / 5000, now + s, s) for s in range(points)
            ],
        )
        client.flush()
        return experiment, long_run.run_id
    finally:
        client.close()


def _timed_load(playwright: Any, url: str, ready: str, profile: str) -> float:
    """Seconds from navigation to ``ready`` (a JS predicate) in a fresh profile."""
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900},
    )
    try:
        page = context.new_page()
        page.goto("about:blank")
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function(ready, timeout=30_000, polling="raf")
        return time.perf_counter() - started
    finally:
        context.close()


RUNS_READY = (
    "() => { const c = document.querySelector('[data-testid=run-count]');"
    " return c && /^[0-9,]+ runs/.test(c.textContent) && parseInt(c.textContent.replace(/,/g, '')) >= {n}"
    " && document.querySelectorAll('.vrow[data-run-id]').length > 10 }"
)
CHART_READY = "() => document.querySelector('[data-testid=metric-chart][data-drawn=true]') !== null"


def _view_assets(manifest: dict[str, Any], entry: str, views: list[str]) -> set[str]:
    """The files a first load of ``views`` fetches: the entry, the chunks it imports
    when the page opens (the app and the view), and their static imports and CSS."""
    found: set[str] = set()

    def add(key: str) -> None:
        chunk = manifest[key]
        if chunk["file"] in found:
            return
        found.add(chunk["file"])
        found.update(chunk.get("css", []))
        for child in chunk.get("imports", []):
            add(child)

    add(entry)
    for key in manifest[entry].get("dynamicImports", []):
        if key in views:
            add(key)
    return found


def _bundle() -> Results:
    import json

    from loopline.server.ui import STATIC_DIR

    assets = STATIC_DIR / "assets"
    manifest_path = STATIC_DIR / ".vite" / "manifest.json"
    if not assets.is_dir() or not manifest_path.is_file():
        raise RuntimeError("the UI is not built: make ui")
    plain = [p for p in assets.iterdir() if not p.name.endswith(".gz")]
    gz = [p for p in assets.iterdir() if p.name.endswith(".gz")]
    manifest = json.loads(manifest_path.read_text())
    entry = next(key for key, chunk in manifest.items() if chunk.get("isEntry"))
    # The runs view: boot.ts imports the app (main.tsx) and the view itself at once.
    first = _view_assets(manifest, entry, ["src/main.tsx", "src/views/Runs.tsx"])
    first_gz = [STATIC_DIR / (name + ".gz") for name in first]
    return {
        "bundle_kib": figure(sum(p.stat().st_size for p in plain) / 1024, "KiB", len(plain)),
        "bundle_gz_kib": figure(sum(p.stat().st_size for p in gz) / 1024, "KiB", len(gz)),
        "first_load_gz_kib": figure(
            sum(p.stat().st_size for p in first_gz) / 1024, "KiB", len(first), "the runs view's"
        ),
    }


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    import httpx
    from playwright.sync_api import sync_playwright

    results: Results = {}
    run_item(results, ["bundle_kib", "bundle_gz_kib", "first_load_gz_kib"], progress, _bundle)
    with temp_dir("loopline-ui-bench-") as home:
        progress(f"filling {sizes['runs']} runs and a {sizes['points']}-point metric")
        experiment, long_run = _fill(home, sizes["runs"], sizes["points"], progress)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LOOPLINE_HOME": home}
        argv = [str(Path(sys.executable).with_name("loopline")), "server", "--port", str(port)]
        with Server(argv, url=url, env=env, log_path=os.path.join(home, "server.log")) as server:
            server.wait_healthy("/health", 60)

            def api_figures() -> Results:
                took = []
                for _ in range(sizes["rounds"]):
                    started = time.perf_counter()
                    httpx.get(
                        f"{url}/api/v1/ui/runs", params={"experiment_ids": experiment}, timeout=60
                    )
                    took.append(time.perf_counter() - started)
                history = []
                for _ in range(sizes["rounds"]):
                    started = time.perf_counter()
                    httpx.get(
                        f"{url}/api/v1/ui/metric-history",
                        params={"run_id": long_run, "key": "loss", "max_points": 1500},
                        timeout=60,
                    ).raise_for_status()
                    history.append(time.perf_counter() - started)
                return {
                    "runs_api_s": figure(statistics.median(took), "s", sizes["runs"]),
                    "history_api_s": figure(statistics.median(history), "s", sizes["points"]),
                }

            def browser_figures() -> Results:
                loads, charts = [], []
                with sync_playwright() as playwright:
                    for _ in range(sizes["rounds"]):
                        with tempfile.TemporaryDirectory() as profile:
                            loads.append(
                                _timed_load(
                                    playwright,
                                    f"{url}/runs?e={experiment}",
                                    RUNS_READY.replace("{n}", str(sizes["runs"])),
                                    profile,
                                )
                            )
                        with tempfile.TemporaryDirectory() as profile:
                            charts.append(
                                _timed_load(
                                    playwright,
                                    f"{url}/runs/{long_run}?tab=metrics",
                                    CHART_READY,
                                    profile,
                                )
                            )
                return {
                    "runs_view_s": figure(
                        statistics.median(loads), "s", sizes["runs"], "cold cache"
                    ),
                    "chart_s": figure(
                        statistics.median(charts), "s", sizes["points"], "cold cache"
                    ),
                }

            run_item(results, ["runs_api_s", "history_api_s"], progress, api_figures)
            run_item(results, ["runs_view_s", "chart_s"], progress, browser_figures)
    return results


SIDES = {"loopline": run_loopline}

ROWS = [
    Row(
        "runs view, first load, 10,000 runs (s)",
        "runs_view_s",
        "",
        None,
        False,
        Goal("max", 1.0, "< 1 s"),
    ),
    Row("  of which GET /api/v1/ui/runs (s)", "runs_api_s", "", None, False),
    Row(
        "100,000-point metric chart drawn (s)",
        "chart_s",
        "",
        None,
        False,
        Goal("max", 1.0, "< 1 s"),
    ),
    Row("  of which GET /api/v1/ui/metric-history (s)", "history_api_s", "", None, False),
    Row("bundle, all assets (KiB)", "bundle_kib", "", None, False),
    Row("bundle, all assets gzipped (KiB)", "bundle_gz_kib", "", None, False),
    Row(
        "first page's assets gzipped (KiB)",
        "first_load_gz_kib",
        "",
        None,
        False,
        Goal("max", 150, "< 150 KiB"),
    ),
]

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

"""The loopline side of every benchmark runs, at tiny sizes, so the benchmarks don't rot.

Peers are not installed here: their sides run only from ``benchmarks/run.py``.
The server item starts a real ``loopline server`` subprocess (about 2 s).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import run as bench_run  # noqa: E402 - after the path set-up above
from benchmarks._harness import Goal, Row, percentile, scaled  # noqa: E402

TINY = {
    "points": 300,
    "overhead_calls": 300,
    "runs": 5,
    "search_runs_small": 6,
    "search_runs": 12,
    "search_repeats": 2,
}


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def tracking() -> Any:
    return importlib.import_module("benchmarks.tracking")


@pytest.mark.parametrize(
    "item",
    [
        "loopline_log_metric",
        "loopline_overhead",
        "loopline_runs",
        "loopline_search",
        "loopline_http",
    ],
)
def test_tracking_item_runs(tracking: Any, item: str) -> None:
    results = getattr(tracking, item)(dict(TINY), _quiet)
    assert results
    for key, fig in results.items():
        assert "error" not in fig, key
        assert fig["value"] > 0, key
        assert fig["n"] >= 1, key


def test_every_row_names_figures_the_sides_produce(tracking: Any) -> None:
    sides = {
        "loopline": tracking.SIDES["loopline"],
        **{p: tracking.SIDES[p] for p in tracking.PEERS},
    }
    assert set(sides) == set(tracking.SIDES)
    for row in tracking.ROWS:
        assert row.peer in tracking.PEERS
        row.label.format(**tracking.SIZES)  # placeholders name real sizes


def test_every_module_has_the_registry_shape() -> None:
    for name, path in bench_run.MODULES.items():
        module = importlib.import_module(path)
        assert name == module.NAME
        assert "loopline" in module.SIDES
        assert set(module.PEERS) <= set(module.SIDES)
        assert module.sizes_for(True) != module.sizes_for(False)


def test_rows_judge_speedups_and_absolute_goals() -> None:
    rate = Row("rate", "r", "peer", "r", True, Goal("speedup", 10, ">= 10x"))
    assert rate.evaluate({"r": {"value": 1000.0}}, {"r": {"value": 50.0}})["pass"] is True
    assert rate.evaluate({"r": {"value": 400.0}}, {"r": {"value": 50.0}})["pass"] is False
    assert rate.evaluate({"r": {"error": "boom"}}, {"r": {"value": 50.0}})["pass"] is None
    latency = Row("lat", "l", "peer", None, False, Goal("max", 20, "< 20"))
    assert latency.evaluate({"l": {"value": 19.0}}, {})["pass"] is True
    faster = Row("lat", "l", "peer", "l", False)
    assert faster.evaluate({"l": {"value": 2.0}}, {"l": {"value": 10.0}})["speedup"] == 5.0


def test_percentile_and_quick_sizes() -> None:
    assert percentile(list(range(1, 1001)), 99) == 990.0
    assert scaled({"a": 1000, "b": 10}, True, {"b": 5}) == {"a": 100, "b": 5}
    assert scaled({"a": 1000}, False) == {"a": 1000}


def test_rounds_merge_into_medians() -> None:
    docs = [
        {"side": "x", "results": {"r": {"value": v, "unit": "runs/s", "n": 5, "note": ""}}}
        for v in (3.0, 1.0, 2.0)
    ]
    docs[1]["results"]["e"] = {"error": "boom"}
    merged = bench_run.merge_rounds(docs)
    assert merged["results"]["r"]["value"] == 2.0
    assert "median of 3 rounds" in merged["results"]["r"]["note"]
    assert merged["results"]["e"] == {"error": "boom"}

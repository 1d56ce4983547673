"""The loopline side of benchmarks/models_format.py runs at tiny sizes, so it does not rot."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _quiet(message: str) -> None:
    pass


def test_models_format_benchmark_runs_and_its_rows_name_real_figures() -> None:
    bench: Any = importlib.import_module("benchmarks.models_format")
    results = bench.run_loopline({"weights_mb": 2, "forest_mb": 1, "repeats": 1}, _quiet)
    for key, fig in results.items():
        assert "error" not in fig, (key, fig)
        assert fig["value"] > 0, key
    for row in bench.ROWS:
        assert row.ours in results, row.ours
        row.label.format(**bench.SIZES)
    assert set(bench.PEERS) <= set(bench.SIDES)
    assert bench.sizes_for(True) != bench.sizes_for(False)

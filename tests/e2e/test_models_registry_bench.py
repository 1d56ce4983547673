"""The loopline side of ``benchmarks/models.py`` runs at tiny sizes, so the benchmark doesn't rot.

MLflow's side runs only from ``benchmarks/run.py`` (in its own environment).
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

TINY = {"versions": 3, "reads": 5, "writes": 3, "download_mb": 2}


@pytest.fixture(scope="module")
def models() -> Any:
    return importlib.import_module("benchmarks.models")


@pytest.mark.parametrize("item", ["loopline_reads", "loopline_writes", "loopline_download"])
def test_models_item_runs(models: Any, item: str) -> None:
    results = getattr(models, item)(dict(TINY), lambda message: None)
    assert results
    for key, fig in results.items():
        assert "error" not in fig, key
        assert fig["value"] > 0, key


def test_the_module_has_the_benchmark_shape(models: Any) -> None:
    assert models.NAME == "models"
    assert set(models.PEERS) <= set(models.SIDES)
    assert "loopline" in models.SIDES
    assert models.sizes_for(True) != models.sizes_for(False)
    produced = {f"{k}_p50_ms" for k in (*models.READS, *models.WRITES)}
    produced |= {"download_mb_s", "download_vs_copy"}
    for row in models.ROWS:
        assert row.ours in produced, row.label
        assert row.theirs is None or row.theirs in produced, row.label
        row.label.format(**models.SIZES)

"""The loopline side of benchmarks/data.py runs at tiny sizes, so the benchmark does not rot.

DVC is not installed here: its side runs only from ``benchmarks/run.py``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TINY = {"big_mib": 3, "small_files": 60, "changed_files": 2, "repeats": 1, "quick_repeats": 1}


@pytest.fixture(scope="module")
def bench() -> Any:
    return importlib.import_module("benchmarks.data")


def test_the_module_has_the_registry_shape(bench: Any) -> None:
    assert bench.NAME == "data"
    assert set(bench.PEERS) == {"dvc"}
    assert set(bench.SIDES) == {"loopline", "dvc"}
    assert bench.sizes_for(True) != bench.sizes_for(False)
    for row in bench.ROWS:
        row.label.format(**bench.SIZES)
        assert row.peer == "dvc"


def test_the_loopline_side_measures_every_figure(bench: Any) -> None:
    results = bench.run_loopline(dict(TINY), lambda message: None)
    expected = {row.ours for row in bench.ROWS}
    assert set(results) == expected
    for key, fig in results.items():
        assert "error" not in fig, (key, fig)
        assert fig["value"] > 0
        assert fig["n"] == 1


def test_shared_data_is_deterministic(bench: Any, tmp_path: Path) -> None:
    one = bench.make_small_files(tmp_path / "a", 20)
    two = bench.make_small_files(tmp_path / "b", 20)
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    assert all(1024 <= p.stat().st_size <= 4096 for p in one)
    bench.make_big_file(tmp_path / "big.bin", 2)
    assert (tmp_path / "big.bin").stat().st_size == 2 << 20

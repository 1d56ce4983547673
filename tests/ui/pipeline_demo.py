"""The browser tests' pipeline: read the demo's dataset, fit two models on one split, compare.

A diamond with a branch, so the DAG view has something to lay out; ``fail_check=1``
makes ``check`` raise, for a failed run with a traceback.
"""

from __future__ import annotations

import loopline


@loopline.step
def load(dataset: loopline.data.DatasetVersion) -> dict[str, list[float]]:
    frame = dataset.to_pandas()
    print(f"read {len(frame)} rows of {dataset.ref}")
    return {
        "x": frame["mean radius"].tolist(),
        "y": frame["target"].astype(float).tolist(),
    }


@loopline.step
def check(table: dict[str, list[float]], fail_check: int) -> int:
    rows = len(table["x"])
    print(f"checking {rows} rows")
    if fail_check:
        raise ValueError(f"check failed on purpose ({rows} rows)")
    return rows


@loopline.step
def fit_threshold(table: dict[str, list[float]]) -> float:
    xs, ys = table["x"], table["y"]
    positives = [x for x, y in zip(xs, ys, strict=True) if y == 1.0]
    cut = sorted(positives)[len(positives) // 2]
    print(f"threshold {cut:.3f}")
    return cut


@loopline.step
def fit_mean(table: dict[str, list[float]]) -> float:
    return sum(table["x"]) / len(table["x"])


@loopline.step
def compare(a: float, b: float, rows: int) -> dict[str, float]:
    print(f"threshold {a:.3f} vs mean {b:.3f} over {rows} rows")
    return {"threshold": a, "mean": b}


@loopline.pipeline
def cancer(dataset: str = "breast-cancer@latest", fail_check: int = 0) -> None:
    table = load(dataset)
    rows = check(table, fail_check)
    compare(fit_threshold(table), fit_mean(table), rows)

"""Pipelines the tests run (loaded by path, as `loopline pipeline run` loads a file)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import loopline
from loopline.pipelines import validate_model


def helper(x: int) -> int:
    return x * int(os.environ.get("FLOWS_FACTOR", "2"))


@loopline.step
def numbers(n: int) -> list[int]:
    return list(range(n))


@loopline.step
def scaled(values: list[int]) -> list[int]:
    return [helper(v) for v in values]


@loopline.step
def total(values: list[int]) -> int:
    print(f"summing {len(values)} values")
    loopline.log_metric("count", len(values))
    return sum(values)


@loopline.step
def fragile(values: list[int]) -> int:
    if os.environ.get("FLOWS_FAIL") == "1":
        raise ValueError("fragile failed on purpose")
    return max(values)


@loopline.step(retries=2, backoff=0.01)
def flaky(values: list[int], marker: str) -> int:
    count = int(Path(marker).read_text()) if os.path.exists(marker) else 0
    with open(marker, "w") as fh:
        fh.write(str(count + 1))
    if count < 2:
        raise RuntimeError(f"attempt {count + 1} fails")
    return len(values)


@loopline.step(timeout=0.5)
def sleepy(values: list[int]) -> int:
    time.sleep(5)
    return 0


@loopline.pipeline
def sums(n: int = 5) -> None:
    total(scaled(numbers(n)))


@loopline.pipeline
def branches(n: int = 5) -> None:
    values = numbers(n)
    total(values)
    fragile(values)


@loopline.pipeline
def retrying(marker: str, n: int = 3) -> None:
    flaky(numbers(n), marker)


@loopline.pipeline
def timing_out(n: int = 3) -> None:
    sleepy(numbers(n))


@loopline.step(outputs=("train", "test"))
def split(dataset: loopline.data.DatasetVersion) -> tuple[Any, Any]:
    frame = dataset.to_pandas()
    return frame.iloc[::2], frame.iloc[1::2]


@loopline.step
def fit(train: Any, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000).fit(train.drop(columns="target"), train["target"])


@loopline.pipeline
def train_and_gate(
    dataset: str = "cancer@latest",
    c: float = 1.0,
    min_auc: str = ">= 0.9",
    promote: str = "champion",
) -> None:
    train, _test = split(dataset)
    model = fit(train, c)
    validate_model(
        model,
        dataset,
        target="target",
        thresholds={"auc": min_auc},
        champion="models:/cancer-clf@champion",
        register_as="cancer-clf",
        promote_to=promote,
    )


@loopline.step(resources={"cpu": 2, "memory": "100MB"})
def assigned(values: list[int]) -> dict[str, float]:
    """What Ray gave this task (run on the Ray executor only)."""
    import ray

    given = ray.get_runtime_context().get_assigned_resources()  # type: ignore[no-untyped-call]
    return {k: float(v) for k, v in given.items()}


@loopline.pipeline
def on_ray(n: int = 4) -> None:
    values = numbers(n)
    total(values)
    assigned(values)


@loopline.step(resources={"cpu": 64})
def greedy(values: list[int]) -> int:
    return len(values)


@loopline.pipeline
def too_big(n: int = 2) -> None:
    greedy(numbers(n))


@loopline.step
def rows(dataset: loopline.data.DatasetVersion) -> int:
    return len(dataset.file.read_text().splitlines()) - 1  # a CSV with a header


@loopline.pipeline
def count_rows(dataset: str = "table@latest") -> None:
    rows(dataset)

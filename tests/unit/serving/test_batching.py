"""Adaptive batching: concurrent requests share one predict, answers go back to their callers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from loopline.serving.batching import Batcher

if TYPE_CHECKING:
    from loopline.serving.model import ServedModel


def _rows(model: ServedModel, seed: int, n: int = 1) -> Any:
    values = np.random.default_rng(seed).uniform(0.5, 7.0, size=(n, 4))
    return model.from_rows(values)


def test_requests_arriving_together_share_one_predict(iris_model: ServedModel) -> None:
    batches: list[int] = []
    batcher = Batcher(max_batch_size=64, on_batch=lambda _m, rows, _s: batches.append(rows))
    inputs = [_rows(iris_model, seed, n=1 + seed % 3) for seed in range(10)]

    async def main() -> list[Any]:
        futures = [batcher.submit(iris_model, x, len(x)) for x in inputs]
        return list(await asyncio.gather(*futures))

    done = asyncio.run(main())
    assert batches == [sum(len(x) for x in inputs)]
    for x, answer in zip(inputs, done, strict=True):
        alone = iris_model.predict(x)
        assert answer.prediction.outputs.tolist() == alone.outputs.tolist()
        assert np.allclose(answer.prediction.proba, alone.proba)
        assert answer.batch_rows == batches[0]


def test_a_batch_never_exceeds_its_size(iris_model: ServedModel) -> None:
    batches: list[int] = []
    batcher = Batcher(max_batch_size=4, on_batch=lambda _m, rows, _s: batches.append(rows))

    async def main() -> None:
        await asyncio.gather(
            *(batcher.submit(iris_model, _rows(iris_model, i), 1) for i in range(10))
        )

    asyncio.run(main())
    assert batches == [4, 4, 2]


def test_batching_off_predicts_each_request_alone(iris_model: ServedModel) -> None:
    batches: list[int] = []
    batcher = Batcher(max_batch_size=1, on_batch=lambda _m, rows, _s: batches.append(rows))

    async def main() -> None:
        await asyncio.gather(
            *(batcher.submit(iris_model, _rows(iris_model, i), 1) for i in range(5))
        )

    asyncio.run(main())
    assert batches == [1] * 5


def test_a_bad_input_fails_only_its_own_request(iris_model: ServedModel) -> None:
    batcher = Batcher(max_batch_size=64)
    good = _rows(iris_model, 1)
    bad = np.full((1, 3), 1.0)  # the wrong width: the merged predict fails, then this one alone

    async def main() -> list[Any]:
        futures = [
            batcher.submit(iris_model, good, 1),
            batcher.submit(iris_model, bad, 1),
            batcher.submit(iris_model, good, 1),
        ]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    first, failed, last = asyncio.run(main())
    assert isinstance(failed, ValueError)
    assert first.prediction.outputs.tolist() == last.prediction.outputs.tolist()
    assert first.batch_rows == 1


def test_a_lone_request_does_not_wait_for_company(iris_model: ServedModel) -> None:
    batcher = Batcher(max_batch_size=64, max_latency=5.0)
    batcher.arriving = 0  # nobody else is being received

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.submit(iris_model, _rows(iris_model, 3), 1)
        return loop.time() - started

    assert asyncio.run(main()) < 1.0


def test_while_others_arrive_the_batch_waits_at_most_max_latency(iris_model: ServedModel) -> None:
    batches: list[int] = []
    batcher = Batcher(
        max_batch_size=64, max_latency=0.05, on_batch=lambda _m, rows, _s: batches.append(rows)
    )

    async def main() -> None:
        batcher.arriving = 1  # a request is being read: worth waiting for
        first = batcher.submit(iris_model, _rows(iris_model, 1), 1)
        await asyncio.sleep(0.01)
        second = batcher.submit(iris_model, _rows(iris_model, 2), 1)
        await asyncio.wait_for(asyncio.gather(first, second), timeout=2.0)

    asyncio.run(main())
    assert batches == [2]


@pytest.mark.parametrize("size", [0, -3])
def test_sizes_below_one_mean_one(size: int) -> None:
    assert Batcher(max_batch_size=size).max_batch_size == 1


def test_a_classifier_answers_its_most_probable_class(iris_model: ServedModel) -> None:
    """The served class comes from predict_proba alone; it is the model's own predict."""
    assert iris_model.argmax_classes is not None
    data = _rows(iris_model, 11, n=200)
    served = iris_model.predict(data)
    named = pd.DataFrame(data, columns=iris_model.columns)
    raw = iris_model.loaded.raw
    assert served.outputs.tolist() == raw.predict(named).tolist()
    assert served.outputs.dtype == raw.predict(named).dtype
    assert np.allclose(served.proba, raw.predict_proba(named))

"""Two independent branches; one fails unless `fail` is off (tries resume)."""

import os

import loopline


@loopline.step
def source(n: int) -> list[int]:
    return list(range(n))


@loopline.step
def total(values: list[int]) -> int:
    return sum(values)


@loopline.step
def fragile(values: list[int]) -> int:
    if os.environ.get("FRAGILE_FAIL") == "1":
        raise ValueError("fragile step failed on purpose")
    return max(values)


@loopline.pipeline
def branches(n: int = 5) -> None:
    values = source(n)
    total(values)
    fragile(values)

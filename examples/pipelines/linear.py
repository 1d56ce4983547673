"""A 10-step linear pipeline of trivial steps (the benchmark's flow)."""

import loopline


@loopline.step
def start(n: int) -> int:
    return n


@loopline.step
def add_one(x: int) -> int:
    return x + 1


@loopline.pipeline
def linear(n: int = 0, steps: int = 10) -> None:
    value = start(n)
    for _ in range(steps - 1):
        value = add_one(value)

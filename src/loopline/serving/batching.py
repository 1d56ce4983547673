"""Adaptive batching: requests that arrive together are predicted in one call.

Each request's input is checked on its own, then handed to :meth:`Batcher.submit`.
A flush is scheduled for the event loop's next turn, so every request the server
read in this turn joins the same ``predict`` (up to ``max_batch_size`` rows). While
more requests for the model are already being received, the flush waits for them,
but never longer than ``max_latency`` after the oldest waiting request. A lone
request therefore never waits, and under load the batch grows with the load.

Prediction runs on the event loop itself: handing each batch to a thread costs more
than a small model's ``predict``, and several worker processes give the parallelism.
If a merged batch fails, its requests are predicted one by one so one bad input
fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.serving.model import Prediction, ServedModel

__all__ = ["Batcher", "Done"]


@dataclass(slots=True)
class Done:
    """One request's share of a batch: its prediction and the batch it rode in."""

    prediction: Prediction
    batch_rows: int
    predict_seconds: float


@dataclass(slots=True)
class _Item:
    model: ServedModel
    data: Any
    rows: int
    future: asyncio.Future[Done]
    queued: float = field(default_factory=time.monotonic)


class Batcher:
    """Merges concurrent requests for one model slot into batched ``predict`` calls.

    ``on_batch(model, rows, seconds)`` is told about every ``predict`` (for metrics).
    """

    def __init__(
        self,
        *,
        max_batch_size: int = 64,
        max_latency: float = 0.002,
        on_batch: Callable[[ServedModel, int, float], None] | None = None,
    ) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self.max_latency = max(0.0, max_latency)
        self.on_batch = on_batch
        self.arriving = 0
        """Requests read but not yet submitted: worth a short wait when batching."""
        self._pending: list[_Item] = []
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None

    def submit(self, model: ServedModel, data: Any, rows: int) -> asyncio.Future[Done]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Done] = loop.create_future()
        self._pending.append(_Item(model, data, rows, future))
        if self.arriving <= 0 or self._pending_rows() >= self.max_batch_size:
            self._schedule(loop, 0.0)  # nobody else is on the way, or the batch is full
        elif self._handle is None:
            self._schedule(loop, 0.0)
        return future

    def _pending_rows(self) -> int:
        return sum(i.rows for i in self._pending)

    def _schedule(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._handle is not None:
            if delay > 0:
                return
            self._handle.cancel()
        self._handle = (
            loop.call_soon(self._flush) if delay <= 0 else loop.call_later(delay, self._flush)
        )

    def _flush(self) -> None:
        self._handle = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        rows = self._pending_rows()
        waited = time.monotonic() - self._pending[0].queued
        if self.arriving > 0 and rows < self.max_batch_size and waited < self.max_latency:
            self._schedule(loop, self.max_latency - waited)
            return
        batch: list[_Item] = []
        taken = 0
        while self._pending and (not batch or taken + self._pending[0].rows <= self.max_batch_size):
            item = self._pending.pop(0)
            batch.append(item)
            taken += item.rows
        self._run(batch)
        if self._pending:
            self._schedule(loop, 0.0)

    def _run(self, batch: list[_Item]) -> None:
        # Requests decoded for different models (an alias moved between them) predict apart.
        groups: dict[int, list[_Item]] = {}
        for item in batch:
            groups.setdefault(id(item.model), []).append(item)
        for items in groups.values():
            self._predict(items)

    def _predict(self, items: list[_Item]) -> None:
        model = items[0].model
        started = time.perf_counter()
        try:
            prediction = model.predict(model.concat([i.data for i in items]))
        except Exception as exc:
            if len(items) == 1:
                _fail(items[0], exc)
                return
            for item in items:  # find the culprit: each request on its own
                self._predict([item])
            return
        seconds = time.perf_counter() - started
        total = sum(i.rows for i in items)
        if self.on_batch is not None:
            self.on_batch(model, total, seconds)
        if len(items) == 1:
            _resolve(items[0], Done(prediction, total, seconds))
            return
        offset = 0
        for item in items:
            part = _slice(prediction, offset, offset + item.rows)
            offset += item.rows
            _resolve(item, Done(part, total, seconds))


def _slice(prediction: Prediction, start: int, stop: int) -> Prediction:
    from loopline.serving.model import Prediction

    proba = prediction.proba[start:stop] if prediction.proba is not None else None
    return Prediction(prediction.outputs[start:stop], proba)


def _resolve(item: _Item, done: Done) -> None:
    if not item.future.done():
        item.future.set_result(done)


def _fail(item: _Item, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)

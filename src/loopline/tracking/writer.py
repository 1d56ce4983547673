"""The background writer: logging calls append to a queue, a thread writes batches.

A logging call costs a tuple and a ``deque.append`` (thread-safe without a lock).
The writer thread drains the queue every ``interval`` seconds, or sooner when it
passes ``high_water`` items, into :class:`~loopline.tracking.entities.RunWrites`
batches applied in one transaction each. ``flush()`` drains and writes in the
caller's thread under the same lock, so everything queued before it is stored
when it returns.

A failed write is kept and raised by the next logging call or ``flush()``; the
points of a param conflict are retried without the offending params, so one
refused param never loses the metrics that came with it.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from loopline.tracking.entities import NewRun, RunUpdate, RunWrites
from loopline.tracking.store import ParamConflictError

if TYPE_CHECKING:
    from loopline.client.transport import Transport

__all__ = ["BatchWriter"]

# Queue item kinds (first element of each tuple).
METRIC, PARAM, TAG, DELETE_TAG, NEW_RUN, UPDATE = range(6)
MAX_POINTS_PER_BATCH = 100_000


class BatchWriter:
    """Buffers tracking writes and applies them in batches from a daemon thread."""

    def __init__(
        self, transport: Transport, *, interval: float = 0.2, high_water: int = 20_000
    ) -> None:
        self.transport = transport
        self.interval = interval
        self.high_water = high_water
        self.queue: deque[tuple[Any, ...]] = deque()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self),), name="loopline-writer", daemon=True
        )
        self._thread.start()

    # -- producers (hot path) ----------------------------------------------------------
    def metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        self.queue.append((METRIC, run_id, key, value, timestamp, step))
        if len(self.queue) > self.high_water:
            self._wake.set()

    def put(self, item: tuple[Any, ...]) -> None:
        self.queue.append(item)

    def new_run(self, run: NewRun) -> None:
        self.queue.append((NEW_RUN, run))

    def update(self, update: RunUpdate) -> None:
        self.queue.append((UPDATE, update))

    def raise_pending(self) -> None:
        """Raise (once) the error of a failed background write."""
        err = self.error
        if err is not None:
            self.error = None
            raise err

    # -- consumers -----------------------------------------------------------------
    def flush(self) -> None:
        """Write everything queued so far; raise any write error."""
        self._drain()
        self.raise_pending()

    def _drain(self) -> None:
        with self._lock:
            while self.queue:
                batch = self._take()
                try:
                    self._write(batch)
                except BaseException as exc:  # kept for the caller, never swallowed
                    self.error = exc

    def _take(self) -> RunWrites:
        batch = RunWrites(batch_id=uuid.uuid4().hex)
        queue, points = self.queue, 0
        metrics_append = batch.metrics.append
        while queue and points < MAX_POINTS_PER_BATCH:
            item = queue.popleft()
            kind = item[0]
            if kind == METRIC:
                metrics_append(item[1:])
                points += 1
            elif kind == PARAM:
                batch.params.append(item[1:])
            elif kind == TAG:
                batch.tags.append(item[1:])
            elif kind == DELETE_TAG:
                batch.deleted_tags.append(item[1:])
                # Tags are applied before deletions: a tag set again after this
                # deletion must go in the next batch to win.
                break
            elif kind == NEW_RUN:
                batch.new_runs.append(item[1])
            else:
                batch.updates.append(item[1])
        return batch

    def _write(self, batch: RunWrites) -> None:
        try:
            self.transport.write(batch)
        except ParamConflictError as exc:
            bad = set(exc.conflicts)
            batch.params = [p for p in batch.params if (p[0], p[1]) not in bad]
            batch.batch_id = uuid.uuid4().hex
            self.transport.write(batch)
            raise

    def close(self) -> None:
        """Flush and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._drain()


def _run(ref: weakref.ReferenceType[BatchWriter]) -> None:
    # Holds only a weak reference between rounds so an abandoned writer can be collected.
    while True:
        writer = ref()
        if writer is None or writer._closed:
            return
        wake, interval = writer._wake, writer.interval
        del writer
        wake.wait(interval)
        writer = ref()
        if writer is None or writer._closed:
            return
        wake.clear()
        writer._drain()
        del writer

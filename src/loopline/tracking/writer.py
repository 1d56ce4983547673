"""The background writer: logging calls append to a queue, a thread writes batches.

A logging call costs a tuple and a ``deque.append`` (thread-safe without a lock).
A metric point goes on the queue as its bare row ``(run_id, key, value, timestamp,
step)``, exactly what :attr:`RunWrites.metrics` holds, so batching it costs
nothing per point; every other item is a shorter ``(KIND, ...)`` tuple.
The writer thread drains the queue every ``interval`` seconds, or sooner when it
passes ``high_water`` items, into :class:`~loopline.tracking.entities.RunWrites`
batches applied in one transaction each. ``flush()`` drains and writes in the
caller's thread under the same lock, so everything queued before it is stored
when it returns.

A failed write is kept and raised by the next logging call, ``flush()`` or
``close()``; when several writes fail before anyone asks, the first error is the
one raised (later ones are usually its consequences). The points of a param
conflict are retried without the offending params, so one refused param never
loses the metrics that came with it.

Every live writer is closed (flushed) when the interpreter exits. Before a
``fork``, live writers flush, so a child sees the runs its parent started; the
child starts with empty queues, never writing its parent's points twice.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import uuid
import weakref
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from loopline.tracking.entities import NewRun, RunUpdate, RunWrites

if TYPE_CHECKING:
    from loopline.client.transport import Transport

__all__ = ["BatchWriter"]

# Queue items: a metric row has METRIC_ROW_LENGTH elements; the others start with
# their kind and are shorter.
METRIC_ROW_LENGTH = 5
PARAM, TAG, DELETE_TAG, NEW_RUN, UPDATE = range(1, 6)
# Per-batch caps, within the service's limits (LIMITS.batch_*), so a batch the
# writer builds is never refused for its size.
MAX_POINTS_PER_BATCH = 100_000
MAX_ITEMS_PER_BATCH = 5_000  # params + tags + deleted tags + new runs + updates

_live: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


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
        self._thread = self._start_thread()
        _live.add(self)

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(
            target=_run, args=(weakref.ref(self),), name="loopline-writer", daemon=True
        )
        thread.start()
        return thread

    # -- producers (hot path) ----------------------------------------------------------
    def metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        queue = self.queue
        queue.append((run_id, key, value, timestamp, step))
        # Once per writer cycle: Event.set takes a lock, and past the high-water mark
        # every call would (fluent.log_metric inlines this).
        if len(queue) > self.high_water and not self._wake.is_set():
            self._wake.set()

    def put(self, item: tuple[Any, ...]) -> None:
        """Queue a ``(PARAM | TAG, run_id, key, value)`` or ``(DELETE_TAG, run_id, key)``."""
        if not 1 < len(item) < METRIC_ROW_LENGTH:
            raise ValueError(f"not a queue item: {item!r}")
        self.queue.append(item)

    def new_run(self, run: NewRun) -> None:
        self.queue.append((NEW_RUN, run))

    def wake(self) -> None:
        """Start writing what is queued now, without waiting for the interval."""
        self._wake.set()

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
        # Only what is queued now: threads that keep logging meanwhile must not keep
        # a flush (or the lock) from ever finishing. What this call finds queued when
        # it gets the lock includes all of it that the thread holding it did not write.
        pending = len(self.queue)
        with self._lock:
            while pending > 0 and self.queue:
                batch, taken = self._take(pending)
                pending -= taken
                try:
                    self._write(batch)
                except BaseException as exc:  # kept for the caller, never swallowed
                    if self.error is None:
                        self.error = exc

    def _take(self, limit: int) -> tuple[RunWrites, int]:
        """The next batch from the head of the queue (at most ``limit`` items), and its size."""
        queue = self.queue
        # C-level loops: with 100,000 points a batch, Python-level ones cost a tenth of
        # the write. Items are never None, so iter() stops only through islice.
        chunk = list(
            islice(iter(queue.popleft, None), min(len(queue), MAX_POINTS_PER_BATCH, limit))
        )
        batch = RunWrites(batch_id=uuid.uuid4().hex)
        if min(map(len, chunk), default=METRIC_ROW_LENGTH) == METRIC_ROW_LENGTH:
            batch.metrics = chunk  # the common case: only metric points (the longest items)
            return batch, len(chunk)
        others = [i for i, item in enumerate(chunk) if len(item) != METRIC_ROW_LENGTH]
        end = _batch_end(chunk, others)
        if end < len(chunk):  # the rest goes back, in order, for the next batch
            queue.extendleft(reversed(chunk[end:]))
            del chunk[end:]
            others = [i for i in others if i < end]
        batch.metrics = [item for item in chunk if len(item) == METRIC_ROW_LENGTH]
        for i in others:
            item = chunk[i]
            kind = item[0]
            if kind == PARAM:
                batch.params.append(item[1:])
            elif kind == TAG:
                batch.tags.append(item[1:])
            elif kind == DELETE_TAG:
                batch.deleted_tags.append(item[1:])
            elif kind == NEW_RUN:
                batch.new_runs.append(item[1])
            else:
                batch.updates.append(item[1])
        return batch, len(chunk)

    def _write(self, batch: RunWrites) -> None:
        from loopline.tracking.store import ParamConflictError

        try:
            self.transport.write(batch)
        except ParamConflictError as exc:
            bad = set(exc.conflicts)
            batch.params = [p for p in batch.params if (p[0], p[1]) not in bad]
            batch.batch_id = uuid.uuid4().hex
            self.transport.write(batch)
            raise

    def close(self) -> None:
        """Flush, stop the thread and raise any write error not raised yet."""
        if not self._closed:
            self._closed = True
            _live.discard(self)
            self._wake.set()
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
        # Also after an earlier close: exit hooks may queue a run's end after the
        # writer's own exit hook closed it.
        self._drain()
        self.raise_pending()

    def _after_fork_in_child(self) -> None:
        # The parent writes what it buffered; locks may have been held by threads
        # that do not exist here.
        self.queue = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        if not self._closed:
            self._thread = self._start_thread()


def _batch_end(chunk: list[tuple[Any, ...]], others: list[int]) -> int:
    """Where a batch taken as ``chunk`` must end (``others``: its non-metric items).

    After MAX_ITEMS_PER_BATCH params, tags and run changes; and right after a tag
    deletion, because a batch applies tags before deletions: a tag set again after
    the deletion must go in the next batch to win.
    """
    for count, i in enumerate(others, start=1):
        if chunk[i][0] == DELETE_TAG or count == MAX_ITEMS_PER_BATCH:
            return i + 1
    return len(chunk)


def _close_all_at_exit() -> None:
    for writer in list(_live):
        try:
            writer.close()
        except BaseException as exc:  # the process is ending: report, do not hide
            print(f"loopline: buffered tracking data could not be stored: {exc}", file=sys.stderr)


def _flush_before_fork() -> None:
    for writer in list(_live):
        writer._drain()  # an error stays pending for the parent's next call


def _after_fork_in_child() -> None:
    for writer in list(_live):
        writer._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_before_fork, after_in_child=_after_fork_in_child)


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

"""A small thread pool for per-file work, with progress and Ctrl-C handled by the caller's thread.

Workers take indices in batches (one shared counter, no per-item futures: with
20,000 files, futures cost more than the work). The calling thread waits in short
joins, reporting progress; a KeyboardInterrupt there sets :attr:`Pool.cancel`,
every worker stops after its current file, and the interrupt propagates.

>>> seen = []
>>> Pool(100, workers=4).run(lambda i, worker: seen.append(i))
>>> sorted(seen) == list(range(100))
True
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import threading
from typing import TYPE_CHECKING

from loopline.data.progress import NoProgress, Progress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["BATCH", "Pool", "default_workers", "gc_paused", "interrupts_deferred"]

BATCH = 32


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored after).

    Listing 20,000 files makes a few hundred thousand small objects, none of them
    in cycles; the collector would walk them all again and again, costing tens of
    milliseconds of the 0.3 s an unchanged ``add`` may take.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


SMALL_AVERAGE = 256 << 10
"""Below this average file size, per-file work runs on one thread."""


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C inside the block takes effect at its end (in the main thread; elsewhere a no-op).

    Creating a temp file and entering the ``try`` that removes it on failure are two
    steps, and a KeyboardInterrupt between them would leave the file behind. Writes
    made by the calling thread (packs, manifests, profiles) run inside this block;
    workers need not, since only the main thread ever sees KeyboardInterrupt.

    >>> with interrupts_deferred():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import signal

    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def default_workers(count: int = 0, size: int = 0) -> int:
    """Threads for ``count`` files of ``size`` bytes in all.

    Large files: a few threads per core (reading and hashing release the GIL for
    long stretches). Small ones: one thread, because each file's work is mostly
    Python between short system calls, and threads contending for the GIL made
    adding 20,000 files of a few KiB 1.4-1.9 times slower on two cores.

    >>> default_workers(20_000, 20_000 * 4096)
    1
    """
    if count and size // count < SMALL_AVERAGE:
        return 1
    return min(8, 2 * (os.cpu_count() or 1))


class Pool:
    """Runs ``work(i, worker)`` for ``i`` in ``range(count)`` on up to ``workers`` threads.

    Without ``workers``, :func:`default_workers` decides from the count and ``size``
    (the bytes the work covers, 0 when unknown).
    """

    def __init__(
        self,
        count: int,
        workers: int | None = None,
        progress: Progress | None = None,
        *,
        batch: int = BATCH,
        size: int = 0,
    ) -> None:
        self.count = count
        self.batch = batch
        wanted = workers or default_workers(count, size)
        self.workers = max(1, min(wanted, -(-count // batch)))
        self.progress = progress or NoProgress()
        self.cancel = threading.Event()
        self.errors: list[BaseException] = []
        self.files = [0] * self.workers
        """Files done, per worker (workers add to their own slot)."""
        self.bytes = [0] * self.workers
        self._next = itertools.count(0, batch)

    def run(self, work: Callable[[int, int], None]) -> None:
        """Do all the work; raises the first failure, or KeyboardInterrupt when interrupted."""
        if self.count == 0:
            return
        threads = [
            threading.Thread(target=self._loop, args=(work, w), name=f"loopline-data-{w}")
            for w in range(self.workers)
        ]
        try:
            # Started inside the try: a Ctrl-C between two starts still cancels and
            # joins the ones already running (they may be writing temp files).
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
                    self.progress.update(sum(self.files), sum(self.bytes))
        except BaseException:
            self.cancel.set()
            for thread in threads:
                if thread.ident is not None:
                    thread.join()
            raise
        self.progress.update(sum(self.files), sum(self.bytes))
        if self.errors:
            raise self.errors[0]

    def _loop(self, work: Callable[[int, int], None], worker: int) -> None:
        try:
            while not self.cancel.is_set():
                start = next(self._next)
                if start >= self.count:
                    return
                for i in range(start, min(start + self.batch, self.count)):
                    if self.cancel.is_set():
                        return
                    work(i, worker)
        except BaseException as exc:
            self.errors.append(exc)
            self.cancel.set()

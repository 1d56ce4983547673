"""Rate limiters: a sliding window in process memory, and fixed windows shared by a store.

:class:`RateLimiter` slows down guessing (failed authentications, sign-ins). Each
server worker keeps its own windows, so with N workers up to N times the configured
attempts get through, which still makes guessing slow.
:class:`SharedRateLimiter` caps how much each user may use the server (every
authenticated request): it is counted in the metadata store, so the cap holds across
worker processes and across servers sharing one PostgreSQL database.

>>> clock = iter(range(100)).__next__
>>> limiter = RateLimiter(limit=2, window=10.0, clock=lambda: float(clock()))
>>> [limiter.hit("ip") for _ in range(3)]
[True, True, False]
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.store.metadata import Database

__all__ = ["RateLimiter", "SharedRateLimiter"]

_MAX_KEYS = 100_000


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Count a hit; False when the key is over its limit (the hit is not counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= _MAX_KEYS:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may hit again (0 when it may now)."""
        with self._lock:
            hits = self._hits.get(key)
            if not hits or len(hits) < self.limit:
                return 0.0
            return max(0.0, self.window - (self._clock() - hits[0]))

    def _prune(self, now: float) -> None:
        stale = [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= _MAX_KEYS:
            self._hits.clear()


@dataclass(slots=True)
class _Window:
    start: int
    """The window's start (milliseconds since the epoch)."""
    known: int = 0
    """Hits every process had recorded in the store at the last sync."""
    pending: int = 0
    """Hits of this process not yet added to the store."""
    synced: float = 0.0


_Due = tuple[str, _Window, int]


class SharedRateLimiter:
    """At most ``limit`` hits per key and fixed window, counted by every process on a store.

    Each process counts locally and adds its count to the store's ``rate_counters``
    row (an atomic upsert that returns the total) on the first hit of a window, then
    at most every ``sync_every`` seconds or when it holds a tenth of the limit. So the
    store sees at most a few writes per second per active key and process, and
    ``workers`` processes can together overshoot the limit by at most about
    ``workers * limit / 10`` hits per window.

    >>> import tempfile
    >>> from loopline.store.metadata import Database
    >>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/m.db")
    >>> a, b = SharedRateLimiter(db, limit=4), SharedRateLimiter(db, limit=4)
    >>> [a.hit("u:1"), b.hit("u:1"), a.hit("u:1"), b.hit("u:1"), a.hit("u:1"), b.hit("u:1")]
    [True, True, True, True, False, False]
    """

    def __init__(
        self,
        db: Database,
        limit: int,
        window: float = 60.0,
        *,
        sync_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.limit = limit
        self.window_ms = int(window * 1000)
        self.sync_every = sync_every
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._pruned = 0

    def hit(self, key: str) -> bool:
        """Count a hit for ``key``; False when the key is over its limit (not counted).

        May write to the store: call it from a worker thread, not the event loop.
        """
        allowed, due = self.count(key)
        return self.sync(*due) if due is not None else allowed

    def count(self, key: str) -> tuple[bool, _Due | None]:
        """Count a hit in memory only: the verdict, or the sync to run before giving one.

        An event loop calls this directly and runs :meth:`sync` (which writes to the
        store) in a worker thread only when it is due, at most every ``sync_every``.
        """
        now = self._clock()
        start = int(now * 1000) // self.window_ms * self.window_ms
        with self._lock:
            current = self._windows.get(key)
            if current is None or current.start != start:
                if len(self._windows) >= _MAX_KEYS:
                    self._windows.clear()
                current = self._windows[key] = _Window(start)
            if current.known + current.pending >= self.limit:
                return False, None
            current.pending += 1
            due = (
                not current.synced
                or now - current.synced >= self.sync_every
                or current.pending * 10 >= self.limit
            )
            if not due:
                return True, None
            add, current.pending, current.synced = current.pending, 0, now
        return True, (key, current, add)

    def sync(self, key: str, window: _Window, add: int) -> bool:
        """Add ``add`` hits to the store's count; False when the total is over the limit."""
        total = self._add(key, window.start, add)
        with self._lock:
            window.known = max(window.known, total)
        return total <= self.limit

    def retry_after(self) -> float:
        """Seconds until the current window ends."""
        now_ms = int(self._clock() * 1000)
        return (self.window_ms - now_ms % self.window_ms) / 1000

    def _add(self, key: str, start: int, add: int) -> int:
        from loopline.store.metadata.schema_collab import rate_counters

        with self.db.write() as conn:
            from sqlalchemy.dialects import postgresql, sqlite

            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            upsert = dialect.insert(rate_counters).values(
                key=key[:128], window_start=start, hits=add
            )
            upsert = upsert.on_conflict_do_update(
                index_elements=[rate_counters.c.key, rate_counters.c.window_start],
                set_={"hits": rate_counters.c.hits + add},
            )
            total = int(conn.execute(upsert.returning(rate_counters.c.hits)).scalar_one())
            if start - self._pruned > 10 * self.window_ms:
                # Old windows count for nothing; one process now and then sweeps them.
                conn.execute(
                    sa.delete(rate_counters).where(
                        rate_counters.c.window_start < start - 2 * self.window_ms
                    )
                )
                self._pruned = start
        return total

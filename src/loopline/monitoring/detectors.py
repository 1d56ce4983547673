"""Online change detectors for a model's error stream: ADWIN, Page-Hinkley and DDM.

Each takes one value at a time (``update(x)``) and sets ``drift_detected`` when it
sees a change; the parameters and their defaults are those of the published
methods (and of river's implementations, which the tests compare against).

- :class:`PageHinkley` (Page 1954): cumulative deviations from the running mean,
  minus a tolerance ``delta``, faded by ``alpha``; drift when the cumulative sum
  moves more than ``threshold`` from its extreme.
- :class:`DDM` (Gama et al. 2004) on a 0/1 error stream: drift when the error rate
  plus its standard deviation passes its minimum by ``drift_threshold`` deviations.
- :class:`ADWIN` (Bifet and Gavaldà 2007): an adaptive window kept as an
  exponential histogram of buckets; every ``clock`` values, drop the oldest part
  while two sub-windows have means further apart than the Hoeffding-style bound
  (each part's size counted beyond ``min_window_length``, as MOA and river do). After
  a detection the window starts afresh, so each change is reported once; the tests
  check that every detection on streams with many changes is river's.

>>> d = PageHinkley()
>>> stream = [0.0] * 300 + [5.0] * 100
>>> [i for i, x in enumerate(stream) if d.update(x)][:1]
[310]
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["ADWIN", "DDM", "PageHinkley", "detect"]


class PageHinkley:
    """Page-Hinkley test for a change in the mean (``mode``: up, down or both)."""

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        self.min_instances, self.delta, self.threshold = min_instances, delta, threshold
        self.alpha, self.mode = alpha, mode
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.up = 0.0
        self.down = 0.0
        self.up_min = math.inf
        self.down_max = -math.inf

    def update(self, x: float) -> bool:
        if self.drift_detected:
            self._reset()
        self.n += 1
        self.mean += (x - self.mean) / self.n
        dev = x - self.mean
        self.up = self.alpha * self.up + dev - self.delta
        self.down = self.alpha * self.down + dev + self.delta
        self.up_min = min(self.up_min, self.up)
        self.down_max = max(self.down_max, self.down)
        rise, fall = self.up - self.up_min, self.down_max - self.down
        found = False
        if self.n >= self.min_instances:
            found = (self.mode != "down" and rise > self.threshold) or (
                self.mode != "up" and fall > self.threshold
            )
        self.drift_detected = found
        return found


class DDM:
    """Drift Detection Method on a stream of errors (1) and successes (0)."""

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self.warm_start = warm_start
        self.warning_threshold, self.drift_threshold = warning_threshold, drift_threshold
        self.drift_detected = False
        self.warning_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.p = 0.0
        self.p_min = math.inf
        self.s_min = math.inf

    def update(self, x: float) -> bool:
        if self.drift_detected:
            self._reset()
        self.n += 1
        self.p += (x - self.p) / self.n
        s = math.sqrt(self.p * (1 - self.p) / self.n)
        found = False
        if self.n > self.warm_start:
            if self.p + s <= self.p_min + self.s_min:
                self.p_min, self.s_min = self.p, s
            level = self.p + s - self.p_min
            found = level > self.drift_threshold * self.s_min
            self.warning_detected = not found and level > self.warning_threshold * self.s_min
        self.drift_detected = found
        return found


class _Bucket:
    __slots__ = ("total", "variance")

    def __init__(self, total: float, variance: float) -> None:
        self.total, self.variance = total, variance


class ADWIN:
    """ADaptive WINdowing: drift when two parts of the recent window differ in mean.

    ``rows[i]`` holds buckets summarising ``2**i`` values each (newest first), at
    most ``max_buckets + 1`` before two merge into the next row.
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta, self.clock, self.max_buckets = delta, clock, max_buckets
        self.min_window_length, self.grace_period = min_window_length, grace_period
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.rows: list[list[_Bucket]] = [[]]
        self.width = 0
        self.total = 0.0
        self.variance = 0.0
        self.ticks = 0

    @property
    def estimation(self) -> float:
        return self.total / self.width if self.width else 0.0

    def update(self, x: float) -> bool:
        # After a change the window starts afresh (as PageHinkley and DDM do, and as
        # river's ADWIN does): what came before the change says nothing of what follows.
        if self.drift_detected:
            self._reset()
        self.ticks += 1
        self._insert(x)
        found = False
        if self.ticks % self.clock == 0 and self.width > self.grace_period:
            found = self._shrink()
        self.drift_detected = found
        return found

    def _insert(self, x: float) -> None:
        if self.width:
            mean = self.estimation
            self.variance += self.width * (x - mean) ** 2 / (self.width + 1)
        self.width += 1
        self.total += x
        self.rows[0].insert(0, _Bucket(x, 0.0))
        for i, row in enumerate(self.rows):
            if len(row) <= self.max_buckets:
                break
            # Merge the two oldest buckets of this row into one of the next.
            b2, b1 = row.pop(), row.pop()
            n = 2**i
            mean_gap = b1.total / n - b2.total / n
            merged = _Bucket(
                b1.total + b2.total, b1.variance + b2.variance + n * n * mean_gap**2 / (2 * n)
            )
            if i + 1 == len(self.rows):
                self.rows.append([])
            self.rows[i + 1].insert(0, merged)

    def _drop_oldest(self) -> None:
        row_i = len(self.rows) - 1
        while not self.rows[row_i]:
            row_i -= 1
        bucket = self.rows[row_i].pop()
        n = 2**row_i
        self.width -= n
        self.total -= bucket.total
        mean_bucket = bucket.total / n
        mean_rest = self.total / self.width if self.width else 0.0
        self.variance -= bucket.variance + n * self.width * (mean_bucket - mean_rest) ** 2 / (
            n + self.width
        )
        self.variance = max(self.variance, 0.0)
        while len(self.rows) > 1 and not self.rows[-1]:
            self.rows.pop()

    def _cut_found(self) -> bool:
        """Scan splits from the oldest bucket forwards; True when one passes the bound."""
        n0, s0 = 0, 0.0
        n_all, s_all = self.width, self.total
        for i in range(len(self.rows) - 1, -1, -1):
            size = 2**i
            for bucket in reversed(self.rows[i]):
                n0 += size
                s0 += bucket.total
                n1, s1 = n_all - n0, s_all - s0
                if n1 < self.min_window_length:
                    return False
                if n0 < self.min_window_length:
                    continue
                if abs(s0 / n0 - s1 / n1) > self._bound(n0, n1):
                    return True
        return False

    def _bound(self, n0: int, n1: int) -> float:
        var = self.variance / self.width
        # Each part counts only beyond the minimum length a part must have (as MOA and
        # river do): the bound is wider than with the plain harmonic mean, so a change
        # is reported once rather than again while the old part drains.
        m_recip = 1.0 / (n0 - self.min_window_length + 1) + 1.0 / (n1 - self.min_window_length + 1)
        dd = math.log(2 * math.log(self.width) / self.delta)
        return math.sqrt(2 * m_recip * var * dd) + 2 * dd * m_recip / 3

    def _shrink(self) -> bool:
        found = False
        while self.width > 0 and self._cut_found():
            self._drop_oldest()
            found = True
        return found


def detect(values: list[float], detector: PageHinkley | DDM | ADWIN) -> list[int]:
    """Indexes at which ``detector`` signals drift over ``values``.

    >>> detect([0.0] * 200 + [1.0] * 200, DDM())
    [200]
    """
    return [i for i, x in enumerate(values) if detector.update(x)]

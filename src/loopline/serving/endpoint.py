"""What the server answers for one name: a primary model, maybe a canary and a shadow.

Every slot holds one :class:`~loopline.serving.model.ServedModel` at a time and is
swapped by plain attribute assignment (atomic in Python): a request reads the slot
once and keeps the model it read, so a swap neither fails nor delays requests.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.serving.batching import Batcher

if TYPE_CHECKING:
    from loopline.serving.model import ServedModel
    from loopline.serving.predlog import PredictionLogger

__all__ = ["Endpoint", "Limits", "Slot", "WindowStats"]


@dataclass(frozen=True, slots=True)
class Limits:
    """When a canary is rolled back by itself: over ``window_seconds``, with at least
    ``min_requests`` answered, an error share above ``max_error_rate`` or a p99 latency
    above ``max_p99_ms``.

    The promotion rule is the other way out: once the limits have been judged and hold,
    a canary that has answered ``promote_after_requests`` requests and has been live
    ``promote_after_seconds`` seconds is promoted by itself. Zero leaves a condition out;
    both zero (the default) leaves promotion to a person.

    >>> Limits.from_dict({"promote_after_requests": 30}).promotes
    True
    >>> Limits().promotes
    False
    """

    max_error_rate: float = 0.05
    max_p99_ms: float = 500.0
    window_seconds: float = 60.0
    min_requests: int = 20
    promote_after_requests: int = 0
    promote_after_seconds: float = 0.0

    @property
    def promotes(self) -> bool:
        """Whether a healthy canary is promoted without a person."""
        return self.promote_after_requests > 0 or self.promote_after_seconds > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_p99_ms": self.max_p99_ms,
            "window_seconds": self.window_seconds,
            "min_requests": self.min_requests,
            "promote_after_requests": self.promote_after_requests,
            "promote_after_seconds": self.promote_after_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        base = cls()
        return cls(
            max_error_rate=float(data.get("max_error_rate", base.max_error_rate)),
            max_p99_ms=float(data.get("max_p99_ms", base.max_p99_ms)),
            window_seconds=float(data.get("window_seconds", base.window_seconds)),
            min_requests=int(data.get("min_requests", base.min_requests)),
            promote_after_requests=int(
                data.get("promote_after_requests", base.promote_after_requests)
            ),
            promote_after_seconds=float(
                data.get("promote_after_seconds", base.promote_after_seconds)
            ),
        )


class WindowStats:
    """Outcomes of the last ``window`` seconds: (time, latency in ms, failed)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float, bool]] = deque(maxlen=100_000)
        self._lock = threading.Lock()
        self.total = 0
        """Requests answered since the slot was filled (or last cleared), window or not."""

    def add(self, latency_ms: float, failed: bool) -> None:
        # Request threads add concurrently: an unlocked += could lose a count.
        with self._lock:
            self._samples.append((time.monotonic(), latency_ms, failed))
            self.total += 1

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
            self.total = 0

    def summary(self, window: float) -> tuple[int, float, float]:
        """(requests, error share, p99 latency in ms) over the window."""
        cutoff = time.monotonic() - window
        recent = [s for s in list(self._samples) if s[0] >= cutoff]
        if not recent:
            return 0, 0.0, 0.0
        errors = sum(1 for s in recent if s[2])
        latencies = sorted(s[1] for s in recent)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        return len(recent), errors / len(recent), p99

    def breach(self, limits: Limits) -> str | None:
        """Why the limits are breached, or None."""
        count, error_rate, p99 = self.summary(limits.window_seconds)
        if count < limits.min_requests:
            return None
        if error_rate > limits.max_error_rate:
            return (
                f"error rate {error_rate:.1%} over the last {limits.window_seconds:g} s "
                f"({count} requests) is above the limit {limits.max_error_rate:.1%}"
            )
        if p99 > limits.max_p99_ms:
            return (
                f"p99 latency {p99:.1f} ms over the last {limits.window_seconds:g} s "
                f"({count} requests) is above the limit {limits.max_p99_ms:g} ms"
            )
        return None

    def promotion(self, limits: Limits, live_seconds: float) -> str | None:
        """Why a canary live ``live_seconds`` has earned its promotion, or None.

        Only once the limits have been judged (``min_requests`` in the window) and hold:
        a canary too quiet to judge is never promoted, whatever the rule's thresholds.
        """
        if not limits.promotes or self.breach(limits) is not None:
            return None
        count, error_rate, p99 = self.summary(limits.window_seconds)
        if count < max(limits.min_requests, 1) or self.total < limits.promote_after_requests:
            return None
        if live_seconds < limits.promote_after_seconds:
            return None
        return (
            f"served {self.total} requests over {live_seconds:.1f} s within its limits "
            f"(last {limits.window_seconds:g} s: {count} requests, error rate "
            f"{error_rate:.1%}, p99 {p99:.1f} ms)"
        )


@dataclass(eq=False, slots=True)
class Slot:
    """One variant (``primary``, ``canary`` or ``shadow``) and its batcher."""

    variant: str
    model: ServedModel | None
    batcher: Batcher
    stats: WindowStats = field(default_factory=WindowStats)


class Endpoint:
    """The models behind one name, the routing between them, and their log."""

    def __init__(
        self,
        name: str,
        primary: ServedModel | None,
        *,
        source: str | None = None,
        logger: PredictionLogger | None = None,
        max_batch_size: int = 64,
        max_latency: float = 0.002,
        deployment: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.source = source or name
        self.logger = logger
        self.deployment = deployment
        self.limits = limits or Limits()
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency
        self.on_batch: Any = None
        self.primary = self.new_slot("primary", primary)
        self.canary: Slot | None = None
        self.canary_percent = 0.0
        self.shadow: Slot | None = None
        self.lock = threading.Lock()
        """Held by whoever reconciles the slots (the follower thread)."""

    def new_slot(self, variant: str, model: ServedModel | None) -> Slot:
        batcher = Batcher(
            max_batch_size=self.max_batch_size,
            max_latency=self.max_latency,
            on_batch=lambda m, rows, s: self.on_batch(m, rows, s) if self.on_batch else None,
        )
        return Slot(variant, model, batcher)

    @property
    def ready(self) -> bool:
        return self.primary.model is not None

    def route(self) -> Slot:
        """The slot answering the next request: the canary for its share, else the primary."""
        canary = self.canary
        if (
            canary is not None
            and canary.model is not None
            and random.random() * 100.0 < self.canary_percent
        ):
            return canary
        return self.primary

    def slot_for_version(self, version: str) -> Slot | None:
        for slot in (self.primary, self.canary, self.shadow):
            if slot is not None and slot.model is not None and slot.model.version == version:
                return slot
        return None

    def models(self) -> list[tuple[str, ServedModel]]:
        found = []
        for slot in (self.primary, self.canary, self.shadow):
            if slot is not None and slot.model is not None:
                found.append((slot.variant, slot.model))
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "ready": self.ready,
            "variants": {v: m.describe() for v, m in self.models()},
            "canary_percent": self.canary_percent,
        }

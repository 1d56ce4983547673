"""Monitors due to run, run by the scheduler on each tick (while it holds the lease)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.config import Settings

__all__ = ["is_due", "run_due"]

log = logging.getLogger(__name__)


def is_due(schedule: str, last_ms: int, now: datetime) -> bool:
    """True when a cron tick falls after ``last_ms`` and at or before ``now``.

    >>> t0 = int(datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    >>> is_due("*/15 * * * *", t0, datetime(2026, 1, 1, 12, 14, tzinfo=UTC))
    False
    >>> is_due("*/15 * * * *", t0, datetime(2026, 1, 1, 12, 15, tzinfo=UTC))
    True
    """
    from croniter import croniter

    base = datetime.fromtimestamp(last_ms / 1000, UTC)
    following: datetime = croniter(schedule, base).get_next(datetime)
    return following <= now


def run_due(settings: Settings, now: datetime) -> int:
    """Run every monitor whose schedule is due at ``now``; returns how many ran.

    One failing monitor is logged and does not stop the others.
    """
    from loopline.errors import LooplineError
    from loopline.monitoring.api import open_local

    if settings.remote:
        return 0
    ran = 0
    with open_local(settings) as svc:
        for monitor in svc.store.all_scheduled():
            last = monitor["last_run_at"] or monitor["created_at"]
            if not is_due(monitor["schedule"], last, now):
                continue
            svc.store._project_id = monitor["project_id"]
            try:
                svc.run(monitor["name"], now=now)
                ran += 1
            except LooplineError as exc:
                log.warning("monitor %s failed: %s", monitor["name"], exc)
    return ran

"""Monitors due to run, run by the scheduler on each tick (while it holds the lease)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from loopline.config import Settings

__all__ = ["run_due"]


def run_due(settings: Settings, now: datetime) -> int:
    """Run every monitor whose schedule is due at ``now``; returns how many ran."""
    del settings, now
    return 0

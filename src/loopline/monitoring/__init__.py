"""Drift, data quality and model quality monitoring; monitors, alerts and reports.

``loopline.monitoring.reports(reference_df, current_df)`` compares two tables;
``drift`` runs the per-column tests alone; ``Profile`` keeps a mergeable summary of
a table so long windows stream in bounded memory; ``create_monitor`` and
``run_monitor`` watch a deployment's prediction log against a dataset version.
Everything loads lazily: importing this package imports neither pandas nor scipy.

>>> import loopline.monitoring as m
>>> m.report.__module__, m.drift.__module__
('loopline.monitoring.reports', 'loopline.monitoring.datadrift')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.monitoring.api import (
        alerts,
        create_monitor,
        delete_monitor,
        get_monitor,
        history,
        list_monitors,
        monitor_runs,
        run_monitor,
    )
    from loopline.monitoring.datadrift import ColumnDrift, DriftReport, drift
    from loopline.monitoring.detectors import ADWIN, DDM, PageHinkley
    from loopline.monitoring.methods import METHODS
    from loopline.monitoring.performance import CBPE, metrics
    from loopline.monitoring.profile import Profile, ProfileBuilder
    from loopline.monitoring.quality import QualityCheck, quality
    from loopline.monitoring.reports import Report, report

__all__ = [
    "ADWIN",
    "CBPE",
    "DDM",
    "METHODS",
    "ColumnDrift",
    "DriftReport",
    "PageHinkley",
    "Profile",
    "ProfileBuilder",
    "QualityCheck",
    "Report",
    "alerts",
    "create_monitor",
    "delete_monitor",
    "drift",
    "get_monitor",
    "history",
    "list_monitors",
    "metrics",
    "monitor_runs",
    "quality",
    "report",
    "run_monitor",
]

_LAZY = {
    **dict.fromkeys(
        ("alerts", "create_monitor", "delete_monitor", "get_monitor", "history",
         "list_monitors", "monitor_runs", "run_monitor"),
        "loopline.monitoring.api",
    ),
    **dict.fromkeys(("ADWIN", "DDM", "PageHinkley"), "loopline.monitoring.detectors"),
    **dict.fromkeys(("ColumnDrift", "DriftReport", "drift"), "loopline.monitoring.datadrift"),
    "METHODS": "loopline.monitoring.methods",
    **dict.fromkeys(("CBPE", "metrics"), "loopline.monitoring.performance"),
    **dict.fromkeys(("Profile", "ProfileBuilder"), "loopline.monitoring.profile"),
    **dict.fromkeys(("QualityCheck", "quality"), "loopline.monitoring.quality"),
    **dict.fromkeys(("Report", "report"), "loopline.monitoring.reports"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""What a monitor run stores and says: its summary, its result rows, its alerts.

Result rows (``monitor_results``) are the history the UI charts: per column and
test for drift, per check for quality, per metric for performance. Quality
estimated before labels is stored as performance metrics named ``estimated.<metric>``
beside the realised ``<metric>``, so one chart draws both lines.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.data.version import DatasetVersion
    from loopline.monitoring.datadrift import DriftReport
    from loopline.monitoring.quality import QualityCheck

__all__ = ["ESTIMATED", "alerts", "dropped", "num", "performance_rows", "results", "summary"]

ESTIMATED = "estimated."


def num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summary(
    report: DriftReport,
    checks: list[QualityCheck],
    perf: dict[str, Any] | None,
    estimate: dict[str, Any] | None,
    rows: int,
) -> dict[str, Any]:
    return {
        "rows": rows,
        "drift": report.to_dict(),
        "quality": [c.to_dict() for c in checks],
        "performance": perf,
        "estimate": estimate,
    }


def performance_rows(
    current: dict[str, float], reference: dict[str, float], drop: float, prefix: str = ""
) -> list[dict[str, Any]]:
    """One result row per metric; the threshold is the reference's level, flagged when
    the metric fell by more than ``drop`` (relative) from it."""
    out = []
    for key, value in current.items():
        ref = reference.get(key)
        worse = bool(dropped({key: value}, {key: ref} if ref is not None else {}, drop))
        out.append({"column_name": "*", "category": "performance", "metric": prefix + key,
                    "value": num(value), "p_value": None, "threshold": num(ref),
                    "flagged": worse})  # fmt: skip
    return out


def results(
    report: DriftReport,
    checks: list[QualityCheck],
    perf: dict[str, Any] | None,
    estimate: dict[str, Any] | None,
    config: dict[str, Any],
) -> list[dict[str, Any]]:
    out = [
        {"column_name": c.column, "category": "drift", "metric": c.method,
         "value": num(c.statistic), "p_value": num(c.p_value), "threshold": c.threshold,
         "flagged": c.drifted}
        for c in report.columns
    ]  # fmt: skip
    out += [
        {"column_name": c.column or "*", "category": "quality", "metric": c.check,
         "value": num(c.value), "p_value": None, "threshold": num(c.threshold),
         "flagged": c.failed}
        for c in checks
    ]  # fmt: skip
    if perf and perf.get("current"):
        out += performance_rows(perf["current"], perf["reference"], config["performance_drop"])
    if estimate:
        out += performance_rows(estimate["estimated"], estimate["reference"],
                                config["estimate_drop"], ESTIMATED)  # fmt: skip
    return out


def dropped(current: dict[str, float], reference: dict[str, float], drop: float) -> list[str]:
    """Metrics of ``current`` worse than ``reference`` by more than ``drop`` (relative)."""
    from loopline.monitoring.performance import HIGHER_IS_BETTER

    worse = []
    for key, ref in reference.items():
        cur = current.get(key)
        if cur is None or ref is None or not math.isfinite(ref) or not math.isfinite(cur):
            continue
        margin = drop * max(abs(ref), 1e-12)
        if (HIGHER_IS_BETTER[key] and cur < ref - margin) or (
            not HIGHER_IS_BETTER[key] and cur > ref + margin
        ):
            worse.append(f"{key} {cur:.4g} (reference {ref:.4g})")
    return worse


def alerts(
    monitor: dict[str, Any],
    report: DriftReport,
    checks: list[QualityCheck],
    perf: dict[str, Any] | None,
    estimate: dict[str, Any] | None,
    config: dict[str, Any],
    version: DatasetVersion,
) -> list[dict[str, Any]]:
    dataset = config["retrain_dataset"] or f"{version.ref.split('@')[0]}@latest"
    out: list[dict[str, Any]] = []

    def add(severity: str, kind: str, message: str) -> None:
        out.append({"severity": severity, "kind": kind, "message": message, "dataset": dataset})

    if report.dataset_drift:
        cols = ", ".join(report.drifted_columns[:10])
        add("critical", "drift",
            f"dataset drift: {report.drift_share:.0%} of features drifted ({cols})")  # fmt: skip
    pred = report.prediction
    if pred is not None and pred.drifted:
        add("warning", "drift", f"prediction drift ({pred.method} {pred.statistic:.4g})")
    failed = [c for c in checks if c.failed and c.check != "freshness"]
    if failed:
        severity = "critical" if any(c.check == "schema" for c in failed) else "warning"
        add(severity, "quality", "; ".join(c.message for c in failed[:10]))
    stale = [c for c in checks if c.failed and c.check == "freshness"]
    if stale:
        add("warning", "freshness", "; ".join(c.message for c in stale))
    if perf and perf.get("reference"):
        worse = dropped(perf["current"], perf["reference"], float(config["performance_drop"]))
        if worse:
            add("critical", "performance", "quality dropped: " + "; ".join(worse))
    if estimate and estimate.get("reference"):
        worse = dropped(estimate["estimated"], estimate["reference"],
                        float(config["estimate_drop"]))  # fmt: skip
        if worse:
            add("warning", "performance",
                f"estimated quality before labels (CBPE, {estimate['rows']} rows) dropped: "
                + "; ".join(worse))  # fmt: skip
    return out

"""Monitors: create them, run them (drift, quality, freshness, performance), alert.

A run compares the monitor's window of the deployment's prediction log with the
profile of its reference dataset version (computed once from the version's data
and cached by its digest), stores every result (the per-feature history), raises
alerts (recorded with a ``monitor.alert`` event in the same transaction) and then
delivers them to the monitor's webhook.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from loopline.errors import InvalidArgumentError
from loopline.monitoring.store import MonitorStore
from loopline.monitoring.window import WindowReader, parse_window

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion
    from loopline.monitoring.datadrift import DriftReport
    from loopline.monitoring.profile import Profile
    from loopline.monitoring.quality import QualityCheck
    from loopline.store.metadata import Database

__all__ = ["DEFAULT_CONFIG", "MonitorService"]

DEFAULT_CONFIG: dict[str, Any] = {
    "drift_share": 0.5,
    "methods": {},
    "thresholds": {},
    "performance_drop": 0.1,
    "max_traffic_age": None,
    "max_dataset_age": None,
    "retrain_dataset": None,
}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _check_name(name: str) -> str:
    if not name or len(name) > 256 or not set(name) <= _NAME_CHARS:
        raise InvalidArgumentError(
            f"{name!r} cannot name a monitor", hint="use letters, digits, '.', '_' and '-'"
        )
    return name


class MonitorService:
    """Monitoring over one metadata database, its datasets and a prediction-log root."""

    def __init__(
        self,
        db: Database,
        data: Callable[[], DataService],
        predictions_root: Path,
        *,
        user: str = "unknown",
        project: str = "default",
        webhook_attempts: int = 4,
        webhook_backoff: float = 0.5,
    ) -> None:
        self.store = MonitorStore(db, user=user, project=project)
        self._data_factory = data
        self._data: DataService | None = None
        self.predictions_root = predictions_root
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff = webhook_backoff

    @property
    def data(self) -> DataService:
        if self._data is None:
            self._data = self._data_factory()
        return self._data

    def close(self) -> None:
        if self._data is not None:
            self._data.close()
            self._data = None

    # -- monitors ------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str,
        target: str | None = None,
        prediction: str | None = None,
        window: str = "1h",
        schedule: str | None = None,
        webhook: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a monitor; the reference must name an existing dataset version."""
        from loopline import predlog
        from loopline.monitoring.alerts import check_webhook

        _check_name(name)
        predlog.source_dir(self.predictions_root, "predictions", deployment)  # checks the name
        parse_window(window)
        if schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(schedule):
                raise InvalidArgumentError(
                    f"{schedule!r} is not a cron schedule", hint="for example '*/15 * * * *'"
                )
        if webhook is not None:
            check_webhook(webhook)
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise InvalidArgumentError(
                f"unknown monitor settings {sorted(unknown)}", hint=f"use {sorted(DEFAULT_CONFIG)}"
            )
        self.data.resolve(reference)  # fails early on a bad reference
        return self.store.create(
            {
                "name": name, "deployment": deployment, "reference": reference,
                "target": target, "prediction": prediction, "window": window,
                "schedule": schedule, "webhook": webhook,
                "config": {**DEFAULT_CONFIG, **(config or {})},
            }
        )  # fmt: skip

    # -- reference profile -----------------------------------------------------------------------
    def reference_profile(self, ref: str) -> tuple[Profile, DatasetVersion]:
        """The mergeable profile of a dataset version, computed once per version."""
        from loopline.monitoring.profile import FORMAT, Profile

        version = self.data.resolve(ref)
        key = f"{version.digest}|{FORMAT}"
        cached = self.store.cached_profile(key)
        if cached is not None:
            return Profile.from_dict(cached), version
        profile = Profile.of(version.to_pandas())
        self.store.cache_profile(key, profile.to_dict())
        return profile, version

    # -- a run -------------------------------------------------------------------------------------
    def run(self, name: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Run a monitor on its current window; returns the stored summary with alerts."""
        from loopline.monitoring.datadrift import drift
        from loopline.monitoring.profile import ProfileBuilder
        from loopline.monitoring.quality import quality

        started = int(time.time() * 1000)
        monitor = self.store.get(name)
        config = {**DEFAULT_CONFIG, **monitor["config"]}
        now = now or datetime.now(UTC)
        reference, version = self.reference_profile(monitor["reference"])
        target, pred = monitor["target"], monitor["prediction"] or "prediction"
        ref_features = {k: v for k, v in reference.columns.items() if k != target}
        reader = WindowReader(self.predictions_root, monitor["deployment"], monitor["window"],
                              now, prediction=pred)  # fmt: skip
        from loopline.monitoring.profile import Profile

        builder = ProfileBuilder(Profile(reference.rows, ref_features))
        labelled: list[pd.DataFrame] = []
        keep = ("request_id", "timestamp")
        for batch in reader.batches(keep=keep):
            builder.update(batch.drop(columns=[c for c in keep if c in batch]))
            if target:
                cols = [c for c in batch.columns if c in (*keep, pred)
                        or c.startswith("out.proba.")]  # fmt: skip
                labelled.append(batch[cols])
        current = builder.result()
        ref_side = Profile(reference.rows, ref_features)
        report = drift(ref_side, current, methods=config["methods"],
                       thresholds=config["thresholds"], drift_share=config["drift_share"],
                       prediction=pred if pred in ref_features else None)  # fmt: skip
        # Outputs (probabilities) are the model's, not inputs a client could add.
        extra = {c for c in builder.extra_columns - {pred} if not c.startswith("out.")}
        checks = quality(ref_side, current, extra_columns=extra)
        checks.extend(self._freshness(reader, version, config, monitor["window"], now))
        perf = self._performance(monitor, reference, version, labelled, reader, now, config)
        summary = _summary(report, checks, perf, current.rows)
        results = _results(report, checks, perf)
        alerts = _alerts(monitor, report, checks, perf, config, version)
        run = {
            "window_start": int(reader.start.timestamp() * 1000) if reader.start else None,
            "window_end": int(now.timestamp() * 1000),
            "rows": current.rows,
            "dataset_drift": report.dataset_drift,
            "drift_share": report.drift_share,
            "summary_json": orjson.dumps(summary).decode(),
            "started_at": started,
            "finished_at": int(time.time() * 1000),
        }
        run_id, stored = self.store.record_run(monitor, run, results, alerts)
        self._deliver(monitor, stored)
        return {"run_id": run_id, "monitor": name, **summary,
                "alerts": [a["payload"] for a in stored]}  # fmt: skip

    def _freshness(
        self,
        reader: WindowReader,
        version: DatasetVersion,
        config: dict[str, Any],
        window: str,
        now: datetime,
    ) -> list[QualityCheck]:
        from loopline.monitoring.quality import freshness

        kind, amount = parse_window(window)
        limit = config["max_traffic_age"] or (amount if kind == "ms" else None)
        out = []
        if limit is not None:
            last = reader.last_traffic()
            age = None if last is None else (now - last).total_seconds() * 1000
            out.append(freshness("traffic", age, float(limit)))
        if config["max_dataset_age"]:
            newest = self.data.resolve(version.ref.split("@")[0] + "@latest").row.created_at
            age_ms = now.timestamp() * 1000 - newest
            out.append(freshness("dataset", age_ms, float(config["max_dataset_age"])))
        return out

    def _performance(
        self,
        monitor: dict[str, Any],
        reference: Profile,
        version: DatasetVersion,
        labelled: list[pd.DataFrame],
        reader: WindowReader,
        now: datetime,
        config: dict[str, Any],
    ) -> dict[str, Any] | None:
        target = monitor["target"]
        if not target or not labelled:
            return None
        import pandas as pd

        from loopline import predlog
        from loopline.monitoring.detectors import DDM, PageHinkley, detect
        from loopline.monitoring.performance import join_feedback, metrics, task_of

        pred = monitor["prediction"] or "prediction"
        feedback = predlog.read_log(self.predictions_root, "feedback", monitor["deployment"],
                                    reader.start, None).to_pandas()  # fmt: skip
        joined = join_feedback(pd.concat(labelled, ignore_index=True), feedback)
        if joined.empty:
            return {"rows": 0, "current": {}, "reference": {}}
        task = task_of(joined["label"].to_numpy())
        current = metrics(joined["label"].to_numpy(), joined[pred].to_numpy(), task=task)
        ref_metrics: dict[str, float] = {}
        ref_df = version.to_pandas()
        if target in ref_df and pred in ref_df:
            ref_metrics = metrics(ref_df[target].to_numpy(), ref_df[pred].to_numpy(), task=task)
        errors = (
            (joined["label"] != joined[pred]).astype(float)
            if task == "classification"
            else (joined["label"] - joined[pred]).abs()
        ).tolist()
        detector = DDM() if task == "classification" else PageHinkley()
        changes = detect(errors, detector)
        return {"rows": len(joined), "task": task, "current": current,
                "reference": ref_metrics, "detector": type(detector).__name__,
                "changes": changes[:20]}  # fmt: skip

    def _deliver(self, monitor: dict[str, Any], alerts: list[dict[str, Any]]) -> None:
        if not monitor.get("webhook") or not alerts:
            return
        from loopline.monitoring.alerts import deliver

        for alert in alerts:
            result = deliver(monitor["webhook"], alert["payload"],
                             attempts=self.webhook_attempts, backoff=self.webhook_backoff)  # fmt: skip
            self.store.set_delivery(alert["id"], result.ok, result.attempts, result.error)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _summary(
    report: DriftReport, checks: list[QualityCheck], perf: dict[str, Any] | None, rows: int
) -> dict[str, Any]:
    return {
        "rows": rows,
        "drift": report.to_dict(),
        "quality": [c.to_dict() for c in checks],
        "performance": perf,
    }


def _results(
    report: DriftReport, checks: list[QualityCheck], perf: dict[str, Any] | None
) -> list[dict[str, Any]]:
    out = [
        {"column_name": c.column, "category": "drift", "metric": c.method,
         "value": _num(c.statistic), "p_value": _num(c.p_value), "threshold": c.threshold,
         "flagged": c.drifted}
        for c in report.columns
    ]  # fmt: skip
    out += [
        {"column_name": c.column or "*", "category": "quality", "metric": c.check,
         "value": _num(c.value), "p_value": None, "threshold": _num(c.threshold),
         "flagged": c.failed}
        for c in checks
    ]  # fmt: skip
    if perf:
        for key, value in perf["current"].items():
            ref = perf["reference"].get(key)
            out.append({"column_name": "*", "category": "performance", "metric": key,
                        "value": _num(value), "p_value": None, "threshold": _num(ref),
                        "flagged": False})  # fmt: skip
    return out


def _dropped(perf: dict[str, Any], drop: float) -> list[str]:
    from loopline.monitoring.performance import HIGHER_IS_BETTER

    worse = []
    for key, ref in perf["reference"].items():
        cur = perf["current"].get(key)
        if cur is None or ref is None or not math.isfinite(ref) or not math.isfinite(cur):
            continue
        margin = drop * max(abs(ref), 1e-12)
        if (HIGHER_IS_BETTER[key] and cur < ref - margin) or (
            not HIGHER_IS_BETTER[key] and cur > ref + margin
        ):
            worse.append(f"{key} {cur:.4g} (reference {ref:.4g})")
    return worse


def _alerts(
    monitor: dict[str, Any],
    report: DriftReport,
    checks: list[QualityCheck],
    perf: dict[str, Any] | None,
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
        worse = _dropped(perf, float(config["performance_drop"]))
        if worse:
            add("critical", "performance", "quality dropped: " + "; ".join(worse))
    return out

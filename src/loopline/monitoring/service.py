"""Monitors: create them, run them (drift, quality, freshness, performance), alert.

A run compares the monitor's window of the deployment's prediction log with the
profile of its reference dataset version (computed once from the version's data
and cached by its digest), stores every result (the per-feature history), raises
alerts (recorded with a ``monitor.alert`` event in the same transaction) and then
delivers them to the monitor's webhook.

With a target column, a run also estimates a classifier's quality before labels
(CBPE on the logged probabilities, calibrated on the reference scored by the model
version that answered; see :mod:`loopline.monitoring.estimate`), and each run
records the realised quality of earlier windows whose labels arrived since.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from loopline import predlog
from loopline.errors import InvalidArgumentError, LooplineError
from loopline.monitoring import _outcome
from loopline.monitoring.store import MonitorStore
from loopline.monitoring.window import WindowReader, parse_window

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion
    from loopline.monitoring.estimate import Calibration
    from loopline.monitoring.profile import Profile
    from loopline.monitoring.quality import QualityCheck
    from loopline.store.metadata import Database

__all__ = ["DEFAULT_CONFIG", "MonitorApi", "MonitorService", "check_config", "check_name"]

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, Any] = {
    "drift_share": 0.5,
    "methods": {},
    "thresholds": {},
    # Relative drops from the reference's quality that alert: realised, then estimated.
    "performance_drop": 0.1,
    "estimate_drop": 0.05,
    # Milliseconds; None: traffic as old as the window (time windows), no dataset limit.
    "max_traffic_age": None,
    "max_dataset_age": None,
    # A window's rows outside [typical * ratio, typical / ratio] fail, where typical is
    # the median of the previous runs' windows (at least ``row_min_runs`` of them).
    "row_ratio": 0.5,
    "row_min_runs": 3,
    "retrain_dataset": None,
}
_NUMBERS = {
    "drift_share": (0.0, 1.0), "performance_drop": (0.0, 1.0), "estimate_drop": (0.0, 1.0),
    "row_ratio": (0.0, 1.0), "max_traffic_age": (1.0, None), "max_dataset_age": (1.0, None),
    "row_min_runs": (1.0, None),
}  # fmt: skip
_KEEP = ("request_id", "timestamp", "model_name", "model_version", "variant")
#: Earlier runs whose realised quality each run brings up to date (labels come late).
RECONCILE_RUNS = 20
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in; unknown keys and out-of-range numbers refused."""
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise InvalidArgumentError(
            f"unknown monitor settings {sorted(unknown)}", hint=f"use {sorted(DEFAULT_CONFIG)}"
        )
    for key, (low, high) in _NUMBERS.items():
        value = config.get(key)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
        if not ok or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise InvalidArgumentError(f"monitor setting {key}={value!r} is out of range",
                                       hint=f"give a number {bounds}")  # fmt: skip
    return {**DEFAULT_CONFIG, **config}


def check_name(name: str) -> str:
    if not name or len(name) > 256 or not set(name) <= _NAME_CHARS:
        raise InvalidArgumentError(
            f"{name!r} cannot name a monitor", hint="use letters, digits, '.', '_' and '-'"
        )
    return name


class MonitorApi(Protocol):
    """What the SDK and the CLI call: :class:`MonitorService` on a store, or
    :class:`~loopline.monitoring.http.MonitorHttpClient` through a server."""

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
    ) -> dict[str, Any]: ...
    def run(self, name: str, *, now: datetime | None = None) -> dict[str, Any]: ...
    def list_all(self) -> list[dict[str, Any]]: ...
    def get(self, name: str) -> dict[str, Any]: ...
    def delete(self, name: str) -> None: ...
    def runs(self, name: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def run_detail(self, name: str, run_id: int) -> dict[str, Any]: ...
    def history(
        self,
        name: str,
        *,
        column: str | None = None,
        category: str | None = None,
        metric: str | None = None,
    ) -> list[dict[str, Any]]: ...
    def alerts(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


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

    # -- reads (the store's, under :class:`MonitorApi`'s names) ---------------------------------
    def list_all(self) -> list[dict[str, Any]]:
        return self.store.list_all()

    def get(self, name: str) -> dict[str, Any]:
        return self.store.get(name)

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def runs(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.store.runs(name, limit)

    def run_detail(self, name: str, run_id: int) -> dict[str, Any]:
        return self.store.run(name, run_id)

    def history(
        self,
        name: str,
        *,
        column: str | None = None,
        category: str | None = None,
        metric: str | None = None,
    ) -> list[dict[str, Any]]:
        return self.store.history(name, column=column, category=category, metric=metric)

    def alerts(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.alerts(name, limit)

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
        from loopline.monitoring.alerts import check_webhook

        check_name(name)
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
        settings = check_config(config or {})
        version = self.data.resolve(reference)  # fails early on a bad reference
        created = self.store.create(
            {
                "name": name, "deployment": deployment, "reference": reference,
                "target": target, "prediction": prediction, "window": window,
                "schedule": schedule, "webhook": webhook, "config": settings,
            }
        )  # fmt: skip
        if target:
            self._calibrate_current(created, version)
        return created

    def _calibrate_current(self, monitor: dict[str, Any], version: DatasetVersion) -> None:
        """Calibrate CBPE for the model the deployment serves now, so runs find it stored.

        Best effort: a deployment that does not exist yet (or a model that cannot load
        here) is calibrated by the first run that sees its answers.
        """
        from loopline.registry.service import RegistryService
        from loopline.serving.deployments import DeploymentService

        db = self.store.db
        registry = RegistryService(db, self.data.blobs, user=self.store.user,
                                   project=self.store.project)  # fmt: skip
        # Not closed: it shares this service's database.
        deployments = DeploymentService(db, registry, actor=self.store.user,
                                        project=self.store.project)  # fmt: skip
        try:
            found = deployments.get(monitor["deployment"])
            current = found.current_version or found.version
            if current is not None:
                self.calibration(monitor, version, found.model, str(current))
        except LooplineError as exc:
            log.info("monitor %s: no calibration at creation: %s", monitor["name"], exc)

    # -- CBPE calibration --------------------------------------------------------------------
    def calibration(
        self, monitor: dict[str, Any], version: DatasetVersion, model: str, model_version: str
    ) -> Calibration | None:
        """CBPE for (reference version, model version), computed once and stored.

        None when the reference lacks the target or probabilities cannot be had (the
        model is not a registered version, has no ``predict_proba``, or fails to load).
        """
        from loopline.monitoring.estimate import FORMAT, Calibration

        target = monitor["target"]
        uri = f"models:/{model}/{model_version}" if model and model_version.isdigit() else None
        raw = f"{FORMAT}|{version.digest}|{uri}|{target}|{monitor['prediction']}"
        key = "cbpe|" + hashlib.sha256(raw.encode()).hexdigest()
        cached = self.store.cached_profile(key)
        if cached is not None:
            return Calibration.from_dict(cached) if cached.get("format") == FORMAT else None
        try:
            found = self._fit_calibration(monitor, version, uri)
        except LooplineError as exc:
            log.warning("monitor %s: cannot calibrate CBPE for %s: %s", monitor["name"], uri, exc)
            found = None
        # A failure is stored too (as an empty document): it is not retried every run.
        self.store.cache_profile(key, found.to_dict() if found else {"format": None})
        return found

    def _fit_calibration(
        self, monitor: dict[str, Any], version: DatasetVersion, uri: str | None
    ) -> Calibration | None:
        from loopline.monitoring.estimate import calibrate, reference_proba

        target, pred = monitor["target"], monitor["prediction"] or "prediction"
        frame = version.to_pandas()
        if target not in frame:
            return None
        labels = frame[target]
        features = frame.drop(columns=[c for c in (target, pred) if c in frame])
        given = reference_proba(features)
        if given is not None:
            return calibrate(given[0], labels, given[1], model="reference")
        if uri is None:
            return None
        import loopline.models

        loaded = loopline.models.load(uri)
        classes = getattr(loaded.raw, "classes_", None)
        if not loaded.has_proba or classes is None:
            return None
        signature = loaded.signature
        if signature is not None and signature.inputs.columns:
            wanted = [c.name for c in signature.inputs.columns]
            missing = [c for c in wanted if c not in features]
            if missing:
                return None
            features = features[wanted]
        try:
            proba = loaded.predict_proba(features)
        except (ValueError, TypeError) as exc:  # the model's own refusal of the reference
            raise InvalidArgumentError(
                f"{uri} cannot score the reference {version.ref}: {exc}",
                hint="give the monitor a reference with the model's input columns",
            ) from exc
        return calibrate(proba, labels, list(classes), model=uri)

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
        from loopline.monitoring.estimate import WindowEstimate
        from loopline.monitoring.profile import Profile, ProfileBuilder
        from loopline.monitoring.quality import QualityThresholds, quality

        started = int(time.time() * 1000)
        monitor = self.store.get(name)
        config = {**DEFAULT_CONFIG, **monitor["config"]}
        now = now or datetime.now(UTC)
        reference, version = self.reference_profile(monitor["reference"])
        target, pred = monitor["target"], monitor["prediction"] or "prediction"
        ref_side = Profile(reference.rows, {k: v for k, v in reference.columns.items()
                                            if k != target})  # fmt: skip
        reader = WindowReader(self.predictions_root, monitor["deployment"], monitor["window"],
                              now, prediction=pred)  # fmt: skip
        builder = ProfileBuilder(ref_side)
        estimator = WindowEstimate(
            lambda model, model_version: self.calibration(monitor, version, model, model_version)
        )
        labelled: list[pd.DataFrame] = []
        for batch in reader.batches(keep=_KEEP):
            builder.update(batch.drop(columns=[c for c in _KEEP if c in batch]))
            if target:
                estimator.update(batch)
                served = batch[batch["variant"] != "shadow"] if "variant" in batch else batch
                labelled.append(served[[c for c in served.columns if c in (*_KEEP, pred)
                                        or c.startswith(predlog.PROBA_PREFIX)]])  # fmt: skip
        current = builder.result()
        report = drift(ref_side, current, methods=config["methods"],
                       thresholds=config["thresholds"], drift_share=config["drift_share"],
                       prediction=pred if pred in ref_side.columns else None)  # fmt: skip
        # Outputs (probabilities) are the model's, not inputs a client could add.
        extra = {
            c for c in builder.extra_columns - {pred} if not c.startswith(predlog.OUTPUT_PREFIX)
        }
        checks = quality(ref_side, current, extra_columns=extra,
                         sent_columns=builder.sent_columns,
                         expected_rows=self._typical_rows(monitor, config),
                         thresholds=QualityThresholds(row_ratio=float(config["row_ratio"])))  # fmt: skip
        checks.extend(self._freshness(reader, version, config, monitor["window"], now))
        estimate = estimator.result()
        perf = self._performance(monitor, version, labelled, reader, estimate)
        if estimate is not None and perf and perf.get("joined") is not None:
            from loopline.monitoring.estimate import realised

            joined = perf.pop("joined")
            if len(joined):
                estimate = realised(estimate, joined["label"], joined[pred],
                                    *_logged_proba(joined, estimate))  # fmt: skip
        elif perf:
            perf.pop("joined", None)
        self._reconcile(monitor)
        summary = _outcome.summary(report, checks, perf, estimate, current.rows)
        results = _outcome.results(report, checks, perf, estimate, config)
        alerts = _outcome.alerts(monitor, report, checks, perf, estimate, config, version)
        start = reader.start or reader.oldest
        run = {
            "window_start": int(start.timestamp() * 1000) if start else None,
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

    def _typical_rows(self, monitor: dict[str, Any], config: dict[str, Any]) -> float | None:
        """The median row count of the previous windows (time windows only), or None while
        there are fewer than ``row_min_runs`` of them."""
        import statistics

        if parse_window(monitor["window"])[0] != "ms":
            return None  # a row window always holds its count
        counts = self.store.recent_row_counts(monitor["id"], 10)
        if len(counts) < max(int(config["row_min_runs"]), 1):
            return None
        return float(statistics.median(counts))

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
        version: DatasetVersion,
        labelled: list[pd.DataFrame],
        reader: WindowReader,
        estimate: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Model quality on the window's labelled rows, against the reference's.

        The reference's quality is its own prediction column's when it has one, else
        the model's on the reference (the CBPE calibration's).
        """
        target = monitor["target"]
        if not target or not labelled:
            return None
        import pandas as pd

        from loopline.monitoring.detectors import DDM, PageHinkley, detect
        from loopline.monitoring.estimate import classification_metrics
        from loopline.monitoring.performance import join_feedback, metrics, task_of

        pred = monitor["prediction"] or "prediction"
        feedback = predlog.read_log(self.predictions_root, "feedback", monitor["deployment"],
                                    reader.start or reader.oldest, None).to_pandas()  # fmt: skip
        joined = join_feedback(pd.concat(labelled, ignore_index=True), feedback)
        if joined.empty or pred not in joined:
            return {"rows": 0, "current": {}, "reference": {}, "joined": None}
        task = task_of(joined["label"].to_numpy())
        proba, classes = _logged_proba(joined, estimate)
        if task == "classification" and proba is not None:
            # The logged probabilities give ROC AUC and log loss too.
            current = classification_metrics(joined["label"], joined[pred],
                                              (estimate or {}).get("positive"), proba,
                                              classes)  # fmt: skip
        else:
            current = metrics(joined["label"].to_numpy(), joined[pred].to_numpy(), task=task)
        ref_metrics: dict[str, float] = {}
        ref_df = version.to_pandas()
        if target in ref_df and pred in ref_df:
            ref_metrics = metrics(ref_df[target].to_numpy(), ref_df[pred].to_numpy(), task=task)
        elif estimate is not None:
            ref_metrics = dict(estimate["reference"])
        errors = (
            (joined["label"] != joined[pred]).astype(float)
            if task == "classification"
            else (joined["label"] - joined[pred]).abs()
        ).tolist()
        detector = DDM() if task == "classification" else PageHinkley()
        changes = detect(errors, detector)
        return {"rows": len(joined), "task": task, "current": current,
                "reference": ref_metrics, "detector": type(detector).__name__,
                "changes": changes[:20], "joined": joined}  # fmt: skip

    def _reconcile(self, monitor: dict[str, Any]) -> int:
        """Record the realised quality of earlier windows whose estimate still lacks labels.

        Labels come after predictions: each run looks back at the last
        :data:`RECONCILE_RUNS` runs with an estimate, joins the feedback that arrived
        since for their window's requests, and stores the realised quality beside the
        estimate (in the run's summary and as ``performance`` results of that run).
        Returns how many runs it updated.
        """
        from loopline.monitoring.estimate import realised
        from loopline.monitoring.performance import join_feedback

        updated = 0
        source = monitor["deployment"]
        config = {**DEFAULT_CONFIG, **monitor["config"]}
        for past in self.store.runs_with_estimates(monitor["id"], RECONCILE_RUNS):
            estimate = past["summary"]["estimate"]
            if estimate["labelled_rows"] >= estimate["rows"] or past["window_start"] is None:
                continue
            start = datetime.fromtimestamp(past["window_start"] / 1000, UTC)
            end = datetime.fromtimestamp(past["window_end"] / 1000, UTC)
            # Labels first: they are few, and without new ones the window is not read.
            feedback = predlog.read_log(self.predictions_root, "feedback", source, start,
                                        None, columns=["request_id", "timestamp", "label"])  # fmt: skip
            if feedback.num_rows <= estimate["labelled_rows"]:
                continue
            wanted = ["request_id", "variant", f"{predlog.OUTPUT_PREFIX}prediction"]
            # The probabilities realised() scores: P(positive) of a binary model, every
            # class's column of a multi-class one (as _logged_proba reads them).
            column = estimate.get("proba_column")
            wanted += [column] if column else list(estimate.get("proba_columns") or [])
            try:
                frame = predlog.read_log(self.predictions_root, "predictions", source, start, end,
                                         columns=wanted).to_pandas()  # fmt: skip
            except (KeyError, ValueError):  # pyarrow's ArrowInvalid: a column never logged
                continue
            frame = frame[frame["variant"] != "shadow"]
            joined = join_feedback(frame, feedback.to_pandas())
            if len(joined) <= estimate["labelled_rows"]:
                continue
            done = realised(estimate, joined["label"], joined[wanted[2]],
                            *_logged_proba(joined, estimate))  # fmt: skip
            rows = _outcome.performance_rows(done["realised"], done["reference"],
                                             config["performance_drop"])  # fmt: skip
            self.store.update_estimate(past["id"], monitor["id"], {**past["summary"],
                                       "estimate": done}, rows)  # fmt: skip
            updated += 1
        return updated

    def _deliver(self, monitor: dict[str, Any], alerts: list[dict[str, Any]]) -> None:
        if not monitor.get("webhook") or not alerts:
            return
        from loopline.monitoring.alerts import deliver

        for alert in alerts:
            result = deliver(monitor["webhook"], alert["payload"],
                             attempts=self.webhook_attempts, backoff=self.webhook_backoff)  # fmt: skip
            self.store.set_delivery(alert["id"], result.ok, result.attempts, result.error)


def _logged_proba(frame: pd.DataFrame, estimate: dict[str, Any] | None) -> tuple[Any, Any]:
    """The logged probabilities of ``frame``'s rows as ``(proba, classes)``: P(positive) of
    a binary model when the estimate names its column (classes None); for a multi-class
    model the matrix of its ``out.proba.<class>`` columns, in the model's class order as
    the estimate knows it, then any other version's classes; ``(None, None)`` otherwise.

    A binary model without an estimate does not say which class is positive, so its
    probabilities are left out, as a multi-class log with fewer than three columns is.
    """
    est = estimate or {}
    column = est.get("proba_column")
    if column:
        return (frame[column].to_numpy() if column in frame else None), None
    known = dict(zip(est.get("proba_columns") or [], est.get("classes") or [], strict=False))
    logged = [c for c in map(str, frame.columns) if c.startswith(predlog.PROBA_PREFIX)]
    ordered = [c for c in known if c in logged] + [c for c in logged if c not in known]
    if len(ordered) < 3:
        return None, None
    classes = [known.get(c) or _class_of(c[len(predlog.PROBA_PREFIX) :]) for c in ordered]
    return frame[ordered].to_numpy(dtype="float64"), classes


def _class_of(name: str) -> str:
    """A class from its column name, as :func:`~loopline.monitoring.estimate.label_key`
    text (the column of class ``1.0`` is ``out.proba.1.0``; its labels read ``1``)."""
    from loopline.monitoring.estimate import label_key

    try:
        return label_key(float(name))
    except ValueError:
        return name

"""Validation gates: the "testing" of CI/CD for models.

:func:`check_data` holds a dataset version against its recorded schema and profile
(and another version's schema, when given as ``reference``); :func:`check_model`
scores a model on a held-out dataset version, holds it to thresholds, compares it
with the current champion on the same version, checks named slices, then registers
it and may move an alias. Both raise :class:`GateFailedError` (exit code 3) with
the whole report; both are also steps (:data:`validate_data`, :data:`validate_model`).

Thresholds given in code can be overridden for a run (``--threshold auc=">= 0.9"``
on the command line): :func:`overrides` sets them for the gates that run.

>>> parse_threshold(">= 0.85")
('>=', 0.85)
>>> passes(0.9, ">= 0.85"), passes(0.8, ">= 0.85")
(True, False)
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.pipelines._errors import ApprovalRequiredError, GateFailedError
from loopline.pipelines.core import step

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from loopline.data.version import DatasetVersion
    from loopline.registry import ModelVersion

__all__ = [
    "check_data",
    "check_model",
    "format_report",
    "overrides",
    "parse_threshold",
    "passes",
    "validate_data",
    "validate_model",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_THRESHOLD = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")
_overrides: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "loopline_gate_overrides", default=None
)


def parse_threshold(text: str) -> tuple[str, float]:
    found = _THRESHOLD.match(str(text))
    if not found:
        raise InvalidArgumentError(
            f"not a threshold: {text!r}", hint='write it like ">= 0.85" or "< 0.2"'
        )
    return found.group(1), float(found.group(2))


def passes(value: float | None, threshold: str) -> bool:
    if value is None or value != value:  # missing or NaN never passes
        return False
    op, bound = parse_threshold(threshold)
    return _OPS[op](float(value), bound)


@contextlib.contextmanager
def overrides(thresholds: dict[str, str] | None) -> Iterator[None]:
    """Thresholds that replace the ones given in code, for gates run inside."""
    for value in (thresholds or {}).values():
        parse_threshold(value)
    token = _overrides.set(dict(thresholds or {}))
    try:
        yield
    finally:
        _overrides.reset(token)


def _effective(thresholds: dict[str, str] | None) -> dict[str, str]:
    merged = dict(thresholds or {})
    merged.update(_overrides.get() or {})
    return merged


def format_report(report: list[dict[str, Any]]) -> str:
    """A gate report as aligned text lines (what the CLI prints).

    >>> print(format_report([{"check": "auc", "value": 0.8, "expected": ">= 0.85", "passed": False}]))
    FAIL  auc  0.8  (expected >= 0.85)
    """
    lines = []
    for item in report:
        value = item.get("value")
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        mark = "ok  " if item["passed"] else "FAIL"
        lines.append(f"{mark}  {item['check']}  {shown}  (expected {item['expected']})")
    return "\n".join(lines)


def _fail_if_needed(report: list[dict[str, Any]], what: str) -> None:
    failed = [r for r in report if not r["passed"]]
    if failed:
        raise GateFailedError(
            f"{what}: {len(failed)} of {len(report)} checks failed\n{format_report(report)}",
            report=report,
        )


# -- data ----------------------------------------------------------------------------
def check_data(
    dataset: Any,
    *,
    columns: list[str] | None = None,
    types: dict[str, str] | None = None,
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
    max_missing: float | dict[str, float] | None = None,
    min_rows: int | None = None,
    max_rows: int | None = None,
    reference: str | None = None,
    file: str | None = None,
) -> list[dict[str, Any]]:
    """Check a dataset version (``NAME@REF`` or a version) against expectations.

    Uses the schema and profile recorded when the version was added; ``reference``
    (another version) adds "same columns and types as the reference" (file by
    file). Every tabular file of the version is checked, each check naming its
    file when there are several; ``file=`` checks one. Returns the report; raises
    :class:`GateFailedError` when a check fails.
    """
    import loopline.data

    version = dataset if hasattr(dataset, "schema") else loopline.data.get(str(dataset))
    schemas, profiles = version.schema, version.profile()
    if not schemas:
        raise GateFailedError(
            f"{version.ref} has no recorded schema (no CSV or Parquet file)",
            report=[{"check": "schema", "value": None, "expected": "tabular", "passed": False}],
        )
    if file is not None and file not in schemas:
        raise InvalidArgumentError(
            f"{version.ref} has no tabular file {file!r}",
            hint=f"its tabular files: {', '.join(sorted(schemas))}",
        )
    ref_schemas = loopline.data.get(reference).schema if reference is not None else None
    expect = _Expectations(columns, types, ranges, max_missing, min_rows, max_rows, reference)
    names = [file] if file is not None else sorted(schemas)
    report: list[dict[str, Any]] = []
    for name in names:
        ref_schema = None
        if ref_schemas is not None:
            ref_schema = ref_schemas.get(name) or (
                next(iter(ref_schemas.values()), {}) if len(names) == 1 else {}
            )
        label = f"{name}: " if len(names) > 1 else ""
        report += _check_table(schemas[name], profiles.get(name, {}), expect, ref_schema, label)
    _fail_if_needed(report, f"data gate on {version.ref}")
    return report


@dataclass(frozen=True, slots=True)
class _Expectations:
    columns: list[str] | None
    types: dict[str, str] | None
    ranges: dict[str, tuple[float | None, float | None]] | None
    max_missing: float | dict[str, float] | None
    min_rows: int | None
    max_rows: int | None
    reference: str | None


def _check_table(  # noqa: C901 - one check after another
    schema: dict[str, Any],
    profile: dict[str, Any],
    expect: _Expectations,
    ref_schema: dict[str, Any] | None,
    label: str,
) -> list[dict[str, Any]]:
    """The checks of one tabular file; ``label`` prefixes each check's name."""
    cols = {c["name"]: c["type"] for c in schema.get("columns", [])}
    report: list[dict[str, Any]] = []

    def add(check: str, value: Any, expected: Any, ok: bool) -> None:
        report.append({"check": label + check, "value": value, "expected": expected, "passed": ok})

    rows = profile.get("rows", schema.get("rows"))
    if expect.min_rows is not None:
        add("rows", rows, f">= {expect.min_rows}", rows is not None and rows >= expect.min_rows)
    if expect.max_rows is not None:
        add("rows", rows, f"<= {expect.max_rows}", rows is not None and rows <= expect.max_rows)
    for col in expect.columns or []:
        add(f"column {col}", "present" if col in cols else "missing", "present", col in cols)
    for col, kind in (expect.types or {}).items():
        add(f"type of {col}", cols.get(col), kind, cols.get(col) == kind)
    stats = profile.get("columns", {})
    for col, (low, high) in (expect.ranges or {}).items():
        info = stats.get(col, {})
        lo, hi = info.get("min"), info.get("max")
        ok = lo is not None and hi is not None
        ok = ok and (low is None or lo >= low) and (high is None or hi <= high)
        add(f"range of {col}", f"[{lo}, {hi}]", f"within [{low}, {high}]", ok)
    if expect.max_missing is not None:
        limits = (
            expect.max_missing
            if isinstance(expect.max_missing, dict)
            else dict.fromkeys(stats, float(expect.max_missing))
        )
        for col, limit in limits.items():
            share = stats.get(col, {}).get("missing")
            add(f"missing in {col}", share, f"<= {limit}", share is not None and share <= limit)
    if ref_schema is not None:
        where = expect.reference
        expected = {c["name"]: c["type"] for c in ref_schema.get("columns", [])}
        if not expected:
            add("schema", "present", f"a table of the same name in {where}", False)
        for col, kind in expected.items():
            add(f"schema {col}", cols.get(col), f"{kind} (as in {where})", cols.get(col) == kind)
        for col in sorted(set(cols) - set(expected)):
            add(f"schema {col}", cols[col], f"absent (as in {where})", False)
    return report


# -- models --------------------------------------------------------------------------
def _score(model: Any, frame: Any, target: str, metrics: list[str]) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    if len(frame) == 0:
        return dict.fromkeys(metrics, float("nan"))
    features, truth = frame.drop(columns=[target]), frame[target].to_numpy()
    predictor = getattr(model, "raw", model)
    predicted = np.asarray(predictor.predict(features))
    scores: dict[str, float] = {}
    for name in metrics:
        if name in ("auc", "roc_auc", "log_loss"):
            proba = np.asarray(predictor.predict_proba(features))
            if name == "log_loss":
                scores[name] = float(
                    skm.log_loss(truth, proba, labels=getattr(predictor, "classes_", None))
                )
            elif proba.shape[1] == 2:
                scores[name] = float(skm.roc_auc_score(truth, proba[:, 1]))
            else:
                scores[name] = float(skm.roc_auc_score(truth, proba, multi_class="ovr"))
        elif name == "accuracy":
            scores[name] = float(skm.accuracy_score(truth, predicted))
        elif name == "f1":
            scores[name] = float(skm.f1_score(truth, predicted, average="macro"))
        elif name == "rmse":
            scores[name] = float(np.sqrt(skm.mean_squared_error(truth, predicted)))
        elif name == "mae":
            scores[name] = float(skm.mean_absolute_error(truth, predicted))
        elif name == "r2":
            scores[name] = float(skm.r2_score(truth, predicted))
        else:
            raise InvalidArgumentError(
                f"unknown metric {name!r}",
                hint="use auc, accuracy, f1, log_loss, rmse, mae or r2",
            )
    return scores


_LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


def check_model(
    model: Any,
    dataset: Any,
    *,
    target: str,
    thresholds: dict[str, str] | None = None,
    champion: str | None = None,
    compare_on: str | None = None,
    min_improvement: float = 0.0,
    slices: dict[str, str] | None = None,
    slice_thresholds: dict[str, str] | None = None,
    register_as: str | None = None,
    promote_to: str | None = None,
) -> dict[str, Any]:
    """Score ``model`` on the held-out ``dataset`` version and gate it.

    ``thresholds`` such as ``{"auc": ">= 0.85"}``; ``champion`` (``models:/NAME@champion``,
    compared on ``compare_on`` or the first threshold's metric, which must improve by
    ``min_improvement``); ``slices`` name pandas queries (``{"young": "age < 30"}``)
    held to ``slice_thresholds`` (default: ``thresholds``). A passed gate registers
    the model as ``register_as`` (logged in the active run) and moves ``promote_to``
    to it, unless the registry requires an approval first: then it raises
    :class:`ApprovalRequiredError` naming the version to approve.
    """
    import loopline.data

    version = dataset if hasattr(dataset, "to_pandas") else loopline.data.get(str(dataset))
    frame = version.to_pandas()
    limits = _effective(thresholds)
    if target not in frame.columns:
        raise InvalidArgumentError(f"{version.ref} has no target column {target!r}")
    main = compare_on or next(iter(limits), "accuracy")
    metrics = sorted(set(limits) | {main} | set(slice_thresholds or {}))
    scores = _score(model, frame, target, metrics)
    report: list[dict[str, Any]] = [
        {
            "check": f"{name} on {version.ref}",
            "value": scores[name],
            "expected": rule,
            "passed": passes(scores[name], rule),
        }
        for name, rule in limits.items()
    ]
    for label, query in (slices or {}).items():
        part = frame.query(query)
        part_scores = _score(model, part, target, metrics)
        for name, rule in (slice_thresholds or limits).items():
            report.append(
                {
                    "check": f"{name} on slice {label} ({len(part)} rows)",
                    "value": part_scores[name],
                    "expected": rule,
                    "passed": passes(part_scores[name], rule),
                }
            )
    champion_score = None
    if champion is not None:
        champion_score = _champion_score(champion, frame, target, main)
        if champion_score is not None:
            lower = main in _LOWER_IS_BETTER
            gain = (champion_score - scores[main]) if lower else (scores[main] - champion_score)
            report.append(
                {
                    "check": f"{main} vs champion {champion} ({champion_score:.4g})",
                    "value": gain,
                    "expected": f">= {min_improvement} improvement",
                    "passed": gain >= min_improvement,
                }
            )
    _fail_if_needed(report, f"model gate on {version.ref}")
    outcome: dict[str, Any] = {"scores": scores, "report": report, "dataset": version.ref}
    if champion_score is not None:
        outcome["champion_score"] = champion_score
    if register_as:
        example = frame.drop(columns=[target]).head(5)
        outcome.update(_register(model, register_as, promote_to, scores, version.ref, example))
    return outcome


def _champion_score(uri: str, frame: Any, target: str, metric: str) -> float | None:
    import loopline.models
    from loopline.errors import NotFoundError

    try:
        current = loopline.models.load(uri)
    except NotFoundError:
        return None  # no champion yet: the first model passes on thresholds alone
    return _score(current, frame, target, [metric])[metric]


def _register(
    model: Any,
    name: str,
    alias: str | None,
    scores: dict[str, float],
    dataset: str,
    example: Any = None,
) -> dict[str, Any]:
    import loopline
    import loopline.registry

    for key, value in scores.items():
        loopline.log_metric(f"gate.{key}", value)
    version = _registered_before(name)
    if version is None:
        # The example gives the version a signature with column names, so servers check
        # inputs and log them under their names.
        info = loopline.log_model(getattr(model, "raw", model), "model", input_example=example)
        tags = {"loopline.gate.dataset": dataset}
        digest = _model_digest()
        if digest is not None:
            tags[_MODEL_TAG] = digest
        version = loopline.registry.register_model(f"runs:/{info.run_id}/model", name, tags=tags)
    found: dict[str, Any] = {"registered": version.ref}
    if alias:
        from loopline.errors import InvalidStateError, PermissionDeniedError

        registered = loopline.registry.get_registered_model(name)
        pending = version.review_status in ("pending_review",) or (
            registered.require_approval and version.review_status != "approved"
        )
        if pending:
            raise ApprovalRequiredError(
                f"{version.ref} passed the gate but needs approval before it becomes "
                f"{name}@{alias}: {_who_approves(registered.project, version.created_by)}, "
                f"with `loopline models approve {version.ref}`",
                hint=f"then `loopline models alias set {name} {alias} {version.version}`, "
                "or resume the pipeline run",
            )
        try:
            loopline.registry.set_alias(name, alias, version.version)
        except (InvalidStateError, PermissionDeniedError) as exc:
            raise ApprovalRequiredError(
                f"{version.ref} passed the gate but {name}@{alias} did not move: {exc.message}; "
                f"{_who_approves(registered.project, version.created_by)}",
                hint=f"approve it with `loopline models approve {version.ref}`",
            ) from exc
        found["promoted"] = f"{name}@{alias}"
    return found


_MODEL_TAG = "loopline.gate.modelDigest"


def _model_digest() -> str | None:
    from loopline.pipelines.worker import input_digest

    return input_digest("model")


def _registered_before(name: str) -> ModelVersion | None:
    """The version a gate registered from the same stored model (a resumed run's), if any.

    Resuming a run that waited for approval must promote the approved version, not
    register the model again as a new version that waits anew.
    """
    import loopline.registry
    from loopline.errors import NotFoundError
    from loopline.pipelines.worker import resuming

    digest = _model_digest()
    if digest is None or not resuming():
        return None
    try:
        versions = loopline.registry.list_versions(name)
    except NotFoundError:
        return None
    found = [v for v in versions if v.tags.get(_MODEL_TAG) == digest]
    return max(found, key=lambda v: v.version) if found else None


def _who_approves(project: str, author: str) -> str:
    """Names the users who may approve (see :mod:`loopline.pipelines.approvals`)."""
    from loopline.config import get_settings
    from loopline.pipelines.approvals import Approvers, approvers
    from loopline.store.metadata import Database

    settings = get_settings()
    if settings.remote:  # a step logging to a server: its auth tables are not ours to read
        return Approvers(project).describe()
    db = Database(settings.metadata_url, migrate=False)
    try:
        return approvers(db, project, author).describe()
    finally:
        db.close()


@step(cache=False)
def validate_data(
    dataset: DatasetVersion,
    columns: list[str] | None = None,
    types: dict[str, str] | None = None,
    ranges: dict[str, list[float | None]] | None = None,
    max_missing: float | None = None,
    min_rows: int | None = None,
    max_rows: int | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """The data gate as a pipeline step (see :func:`check_data`); returns the report."""
    report = check_data(
        dataset,
        columns=columns,
        types=types,
        ranges={k: (v[0], v[1]) for k, v in (ranges or {}).items()},
        max_missing=max_missing,
        min_rows=min_rows,
        max_rows=max_rows,
        reference=reference,
    )
    return {"report": report}


@step(cache=False)
def validate_model(
    model: Any,
    dataset: DatasetVersion,
    target: str,
    thresholds: dict[str, str] | None = None,
    champion: str | None = None,
    compare_on: str | None = None,
    min_improvement: float = 0.0,
    slices: dict[str, str] | None = None,
    slice_thresholds: dict[str, str] | None = None,
    register_as: str | None = None,
    promote_to: str | None = None,
) -> dict[str, Any]:
    """The model gate as a pipeline step (see :func:`check_model`)."""
    return check_model(
        model,
        dataset,
        target=target,
        thresholds=thresholds,
        champion=champion,
        compare_on=compare_on,
        min_improvement=min_improvement,
        slices=slices,
        slice_thresholds=slice_thresholds,
        register_as=register_as,
        promote_to=promote_to,
    )

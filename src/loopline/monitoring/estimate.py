"""Quality before labels in monitor runs: CBPE on the probabilities a deployment logs.

A :class:`Calibration` is fitted once per (reference dataset version, model
version): the reference's features scored by that model (or the probability
columns the reference already carries, such as ``loopline predict`` writes), against
the reference's labels. It keeps the CBPE map and the model's quality on the
reference, the level an estimate is compared with.

A run streams its window through :class:`WindowEstimate`: rows are grouped by the
model version that answered them (a canary or a promotion mixes versions), each
group is calibrated by its own model, and the expected confusion counts add up.
Shadow answers are left out (they were never returned). Once labels arrive,
:func:`realised` computes the same metrics from them, and the run records both.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> p1 = rng.uniform(size=4000)
>>> y = (rng.uniform(size=p1.size) < p1).astype(int)
>>> cal = calibrate(np.column_stack([1 - p1, p1]), y, [0, 1], model="models:/m/1")
>>> cal.columns, cal.positive, round(cal.reference["accuracy"], 2)
(['out.proba.0', 'out.proba.1'], '1', 0.74)
>>> w = WindowEstimate(lambda name, version: cal)
>>> w.update(pd.DataFrame({"out.proba.0": 1 - p1, "out.proba.1": p1,
...                        "model_name": "m", "model_version": "1"}))
>>> est = w.result()
>>> est["rows"], abs(est["estimated"]["accuracy"] - cal.reference["accuracy"]) < 0.01
(4000, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loopline import predlog

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from loopline.monitoring.performance import CBPE

__all__ = [
    "FORMAT",
    "Calibration",
    "WindowEstimate",
    "calibrate",
    "classification_metrics",
    "label_key",
    "realised",
]

FORMAT = "loopline.monitoring.cbpe/2"
#: Columns of a reference table that hold a model's class probabilities already:
#: a prediction log's, or the ``proba_<class>`` columns of ``loopline predict``.
REFERENCE_PROBA_PREFIXES = (predlog.PROBA_PREFIX, "proba_")


def label_key(value: Any) -> str:
    """Labels compared as text: ``1``, ``1.0`` and ``"1"`` are the same class.

    >>> label_key(1), label_key(1.0), label_key("1"), label_key(True), label_key(0.5)
    ('1', '1', '1', 'True', '0.5')
    """
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalars
        return label_key(value.item())
    return str(value)


@dataclass(slots=True)
class Calibration:
    """CBPE fitted for one model on one reference, with the model's reference quality."""

    model: str
    columns: list[str]
    """The log's probability columns, in the model's class order."""
    keys: list[str]
    """The classes as :func:`label_key` text, same order."""
    positive: str | None
    """Binary models: the positive class (the second); None for multi-class ones."""
    cbpe: dict[str, Any]
    reference: dict[str, float]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        fields = {k: v for k, v in d.items() if k != "format"}
        return cls(**fields)

    def estimator(self) -> CBPE:
        from loopline.monitoring.performance import CBPE

        return CBPE.from_dict(self.cbpe)


def calibrate(proba: Any, labels: Any, classes: list[Any], *, model: str) -> Calibration:
    """Fit CBPE on a reference's probabilities ``(n, k)`` (columns in ``classes`` order)."""
    import numpy as np

    from loopline.errors import InvalidArgumentError
    from loopline.monitoring.performance import CBPE, metrics

    pr = np.asarray(proba, dtype=np.float64)
    if pr.ndim != 2 or pr.shape[1] != len(classes) or len(classes) < 2:
        raise InvalidArgumentError(
            f"probabilities of shape {pr.shape} do not match {len(classes)} classes",
            hint="give one column per class, in the model's class order",
        )
    keys = [label_key(c) for c in classes]
    y = np.array([label_key(v) for v in np.asarray(labels).tolist()], dtype=object)
    chosen = np.asarray(keys, dtype=object)[pr.argmax(axis=1)]
    if len(keys) == 2:
        positive: str | None = keys[1]
        est = CBPE().fit(pr[:, 1], y, positive=positive)
        chosen = np.where(pr[:, 1] >= est.threshold, keys[1], keys[0])
    else:
        positive = None
        est = CBPE().fit(pr, y, classes=np.asarray(keys, dtype=object))
    binary = pr[:, 1] if positive is not None else None
    quality = metrics(y, chosen, task="classification", positive=positive, proba=binary)
    reference: dict[str, float] = {
        k: quality[k] for k in ("accuracy", "f1", "roc_auc") if k in quality
    }
    if positive is None:
        reference = {"accuracy": quality["accuracy"]}
    return Calibration(
        model=model,
        columns=[f"{predlog.PROBA_PREFIX}{c}" for c in classes],
        keys=keys,
        positive=positive,
        cbpe=est.to_dict(),
        reference=reference,
        rows=len(pr),
    )


def reference_proba(frame: pd.DataFrame) -> tuple[Any, list[str]] | None:
    """Probability columns the reference already carries, as ``(matrix, classes)``."""
    for prefix in REFERENCE_PROBA_PREFIXES:
        cols = [c for c in map(str, frame.columns) if c.startswith(prefix)]
        if len(cols) >= 2:
            return frame[cols].to_numpy(dtype="float64"), [c[len(prefix) :] for c in cols]
    return None


class WindowEstimate:
    """Streams a window's logged probabilities into CBPE's expected confusion counts."""

    def __init__(self, calibration_for: Callable[[str, str], Calibration | None]) -> None:
        self._calibration_for = calibration_for
        self._found: dict[tuple[str, str], Calibration | None] = {}
        self._sums: dict[tuple[str, str], Any] = {}
        self.rows = 0
        self.skipped = 0

    def update(self, batch: pd.DataFrame) -> None:
        if not any(str(c).startswith(predlog.PROBA_PREFIX) for c in batch.columns):
            return
        if "variant" in batch:
            batch = batch[batch["variant"] != "shadow"]
        names = batch.get("model_name")
        versions = batch.get("model_version")
        if names is None or versions is None:
            groups: Any = [(("", ""), batch)]
        else:
            groups = batch.groupby([names.astype(str), versions.astype(str)], sort=False)
        for (name, version), part in groups:
            self._add((str(name), str(version)), part)

    def _add(self, key: tuple[str, str], part: pd.DataFrame) -> None:
        if key not in self._found:
            self._found[key] = self._calibration_for(*key)
        cal = self._found[key]
        if cal is None or not all(c in part for c in cal.columns):
            self.skipped += len(part)
            return
        proba = part[cal.columns].to_numpy(dtype="float64")
        proba = proba[~(proba != proba).any(axis=1)]  # rows without probabilities
        if not len(proba):
            return
        est = cal.estimator()
        sums = est.sums(proba[:, 1] if cal.positive is not None else proba)
        self._sums[key] = sums if key not in self._sums else self._sums[key] + sums
        self.rows += len(proba)

    def result(self) -> dict[str, Any] | None:
        """The window's estimate with the reference quality it compares with, or None."""
        used = {k: self._found[k] for k in self._sums}
        if not used:
            return None
        shapes = {len(s) for s in self._sums.values()}
        first = next(iter(used.values()))
        assert first is not None
        if len(shapes) != 1:  # binary and multi-class versions together: no common counts
            return None
        total = sum(self._sums.values())
        estimated = first.estimator().from_sums(total)
        # The reference level of a mixed window: each version's, weighted by its rows.
        weights = {k: float(s[-1] if len(s) == 2 else sum(s)) for k, s in self._sums.items()}
        reference: dict[str, float] = {}
        for metric in estimated:
            parts = [(weights[k], c.reference.get(metric)) for k, c in used.items() if c]
            if all(v is not None for _, v in parts):
                whole = sum(w for w, _ in parts) or 1.0
                reference[metric] = sum(w * float(v or 0.0) for w, v in parts) / whole
        return {
            "method": "CBPE",
            "rows": self.rows,
            "models": sorted(c.model for c in used.values() if c),
            "positive": first.positive,
            "proba_column": first.columns[1] if first.positive is not None else None,
            # The model's classes (as label_key text) and their log columns, same order.
            "classes": first.keys,
            "proba_columns": first.columns,
            "estimated": estimated,
            "reference": reference,
            "realised": None,
            "labelled_rows": 0,
            "error": None,
        }


def realised(
    estimate: dict[str, Any],
    labels: Any,
    predictions: Any,
    proba: Any = None,
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """``estimate`` with the quality its window really had, from labels joined so far;
    ``proba`` (P(positive) of a binary model, or a multi-class model's matrix with its
    ``classes``) adds the realised ROC AUC and log loss.

    Every realised metric is kept (an earlier window labelled late gets the same
    metrics as the current one); ``error`` compares those that were estimated.
    """
    real = classification_metrics(labels, predictions, estimate.get("positive"), proba, classes)
    return {
        **estimate,
        "realised": real,
        "labelled_rows": len(labels),
        "error": {k: v - real[k] for k, v in estimate["estimated"].items() if k in real},
    }


def classification_metrics(
    labels: Any,
    predictions: Any,
    positive: str | None = None,
    proba: Any = None,
    classes: list[Any] | None = None,
) -> dict[str, float]:
    """A classifier's quality with labels compared as :func:`label_key` text (feedback may
    send ``1`` where the model answered ``1.0``).

    ``proba`` is P(``positive``) of a binary model, or an ``(n, k)`` matrix whose columns
    are ``classes`` (see :func:`~loopline.monitoring.performance.metrics` for ROC AUC and
    log loss over it). In a matrix, NaN marks a probability that was not logged: a row
    without any (an answer logged without probabilities) counts for accuracy and F1 only;
    a row missing some (a model version without those classes) gives them 0.

    >>> import numpy as np
    >>> p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [np.nan] * 3])
    >>> m = classification_metrics([0, 1, 2.0, 1], [0, 1, 2, 0], proba=p, classes=[0, 1, 2])
    >>> m["accuracy"], m["roc_auc"], round(m["log_loss"], 4)
    (0.75, 1.0, 0.3635)
    """
    import numpy as np

    from loopline.errors import InvalidArgumentError
    from loopline.monitoring.performance import metrics

    y = np.array([label_key(v) for v in np.asarray(labels).tolist()], dtype=object)
    p = np.array([label_key(v) for v in np.asarray(predictions).tolist()], dtype=object)
    pr = None if proba is None else np.asarray(proba, dtype=np.float64)
    if pr is None or (pr.ndim == 1 and positive is None):
        return metrics(y, p, task="classification", positive=positive)
    if pr.ndim == 1:
        return metrics(y, p, task="classification", positive=positive, proba=pr)
    if classes is None:
        raise InvalidArgumentError(
            "a probability matrix needs its classes", hint="pass classes= in column order"
        )
    keys = [label_key(c) for c in classes]
    missing = np.isnan(pr)
    logged = ~missing.all(axis=1)
    pr = np.where(missing, 0.0, pr)
    out = metrics(y, p, task="classification", positive=positive, classes=keys)
    if logged.any():
        scored = metrics(y[logged], p[logged], task="classification", positive=positive,
                         proba=pr[logged], classes=keys)  # fmt: skip
        out |= {k: v for k, v in scored.items() if k not in out}
    return out

"""Model quality once labels arrive, and an estimate of it before they do.

:func:`metrics` computes classification (accuracy, F1, ROC AUC, log loss) or
regression (MAE, RMSE, R²) quality; :func:`join_feedback` joins labels to
predictions by ``request_id``; :func:`windows` computes metrics per time window.

:class:`CBPE` (confidence-based performance estimation) estimates a classifier's
accuracy (and, for binary ones, F1) from its predicted probabilities alone: fitted
on a reference with labels, it calibrates the probabilities (histogram binning),
then the expected confusion matrix of a window is the sum of calibrated
probabilities. It is right when the probabilities stay calibrated, which holds
under covariate shift but not under concept drift.

>>> import numpy as np
>>> m = metrics(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), proba=np.array([0.9, 0.2, 0.4, 0.8]))
>>> m["accuracy"], round(m["f1"], 4), m["roc_auc"]
(0.75, 0.8, 1.0)
>>> metrics(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.5]), task="regression")["mae"]
0.3333333333333333
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["CBPE", "join_feedback", "metrics", "task_of", "windows"]

Task = Literal["classification", "regression"]
#: Score cells of CBPE's ROC AUC estimate.
AUC_CELLS = 1000
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "roc_auc": True, "log_loss": False,
                    "unknown_labels": False, "mae": False, "rmse": False,
                    "r2": True}  # fmt: skip


def task_of(labels: Any) -> Task:
    """Classification for integer, boolean or text labels; regression for floats."""
    import numpy as np

    arr = np.asarray(labels)
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        whole = finite.size and np.all(finite == np.round(finite)) and len(np.unique(finite)) <= 20
        return "classification" if whole else "regression"
    return "classification"


def metrics(
    y_true: Any,
    y_pred: Any,
    *,
    proba: Any = None,
    task: Task | None = None,
    positive: Any = 1,
    classes: Any = None,
) -> dict[str, float]:
    """Quality metrics of a window: accuracy, F1, ROC AUC and log loss for a classifier;
    MAE, RMSE and R² for a regressor.

    ``proba`` is P(``positive``) of a binary model, or an ``(n, k)`` matrix whose columns
    are ``classes`` in that order (a model's ``classes_``; without them, the sorted
    labels of ``y_true``, which must then be ``k``, as scikit-learn infers them). With a
    matrix, ROC AUC is the one-vs-rest macro average over the classes the window's labels
    hold (a class with no label, or with nothing but, has no ROC curve and is skipped),
    and log loss reads each row's column by its label. Rows whose label is none of
    ``classes`` (a class the model never learnt) are wrong for accuracy and F1 but left
    out of ROC AUC and log loss, which the model could not score on them; their count
    is ``unknown_labels`` (present only when some are). Probabilities are clipped to
    ``[1e-15, 1]`` for log loss. F1 is the positive class's for two classes (given
    ``positive``), else the macro average over the classes labelled or predicted.

    >>> import numpy as np
    >>> y = np.array(["a", "b", "c", "a"])
    >>> p = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.4, 0.5, 0.1]])
    >>> m = metrics(y, np.array(["a", "b", "c", "b"]), proba=p, classes=["a", "b", "c"])
    >>> m["accuracy"], round(m["roc_auc"], 4), round(m["log_loss"], 4)
    (0.75, 0.9444, 0.7206)
    >>> m = metrics(np.array(["a", "d"]), np.array(["a", "a"]), proba=p[:2], classes=["a", "b", "c"])
    >>> m["unknown_labels"], round(m["log_loss"], 4)
    (1.0, 0.3567)
    """
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise InvalidArgumentError("labels and predictions differ in length")
    if len(y_true) == 0:
        return {}
    task = task or task_of(y_true)
    if task == "regression":
        t, p = y_true.astype(float), y_pred.astype(float)
        err = p - t
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        r2 = 1 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else math.nan
        return {"mae": float(np.mean(np.abs(err))),
                "rmse": float(math.sqrt(np.mean(err**2))), "r2": r2}  # fmt: skip
    out = {"accuracy": float(np.mean(y_true == y_pred))}
    seen = np.unique(np.concatenate([y_true, y_pred]))
    two = len(seen) <= 2 and (classes is None or len(classes) <= 2)
    if two and positive is not None:
        out["f1"] = _f1(y_true == positive, y_pred == positive)
    else:
        out["f1"] = float(np.mean([_f1(y_true == c, y_pred == c) for c in seen]))
    if proba is None:
        return out
    pr = np.asarray(proba, dtype=float)
    if pr.ndim == 1:
        pos = y_true == positive
        if 0 < pos.sum() < len(pos):
            out["roc_auc"] = _auc(pos, pr)
        picked = np.where(pos, pr, 1 - pr)
        out["log_loss"] = float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))
        return out
    return out | _matrix_metrics(y_true, pr, classes)


def _matrix_metrics(y_true: Any, pr: Any, classes: Any) -> dict[str, float]:
    """ROC AUC (one-vs-rest, macro) and log loss of an ``(n, k)`` probability matrix."""
    import numpy as np

    if classes is None:
        classes = np.unique(y_true)
        if len(classes) != pr.shape[1]:
            raise InvalidArgumentError(
                f"the labels hold {len(classes)} classes but the probabilities "
                f"{pr.shape[1]} columns",
                hint="pass classes=, the model's classes in its column order",
            )
    keys = list(np.asarray(classes).tolist())
    column = {c: i for i, c in enumerate(keys)}
    if len(column) != len(keys) or pr.shape != (len(y_true), len(keys)):
        raise InvalidArgumentError(
            f"probabilities of shape {pr.shape} do not match {len(y_true)} rows "
            f"and the classes {keys}",
            hint="give one row per label and one column per distinct class",
        )
    idx = np.fromiter((column.get(v, -1) for v in y_true.tolist()), np.intp, len(y_true))
    known = idx >= 0
    out: dict[str, float] = {}
    if not known.all():
        out["unknown_labels"] = float((~known).sum())
    idx, pr = idx[known], pr[known]
    if not len(idx):
        return out
    # Two classes give the same curve twice (p and 1 - p), so the average is the binary one.
    aucs = [_auc(idx == i, pr[:, i]) for i in range(len(keys)) if 0 < (idx == i).sum() < len(idx)]
    if aucs:
        out["roc_auc"] = float(np.mean(aucs))
    picked = np.clip(pr[np.arange(len(idx)), idx], 1e-15, 1.0)
    out["log_loss"] = float(-np.mean(np.log(picked)))
    return out


def _f1(t: npt.NDArray[np.bool_], p: npt.NDArray[np.bool_]) -> float:
    tp = float((t & p).sum())
    denom = 2 * tp + float((~t & p).sum()) + float((t & ~p).sum())
    return 2 * tp / denom if denom else 0.0


def _auc(pos: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> float:
    """ROC AUC from ranks (the Mann-Whitney U statistic), ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Predictions with their label (the latest one sent per ``request_id``), labelled rows only.

    A request that predicted several rows gets its label on each row only when
    the label is per row; here a label applies to the request's rows.
    """
    if predictions.empty or feedback.empty:
        return predictions.iloc[0:0].assign(label=[])
    labels = feedback.sort_values("timestamp").drop_duplicates("request_id", keep="last")[
        ["request_id", "label"]
    ]
    return predictions.merge(labels, on="request_id", how="inner")


def windows(
    frame: pd.DataFrame,
    *,
    every: str,
    label: str = "label",
    prediction: str = "out.prediction",
    proba: str | None = None,
    task: Task | None = None,
) -> list[dict[str, Any]]:
    """Metrics per time window (``every`` a pandas frequency such as ``1h``) of a joined frame."""
    out: list[dict[str, Any]] = []
    if frame.empty:
        return out
    task = task or task_of(frame[label].to_numpy())
    for start, part in frame.groupby(frame["timestamp"].dt.floor(every)):
        p = part[proba].to_numpy() if proba and proba in part else None
        m = metrics(part[label].to_numpy(), part[prediction].to_numpy(), proba=p, task=task)
        out.append({"start": start.isoformat(), "rows": len(part), **m})
    return out


class CBPE:
    """Confidence-based performance estimation for classifiers (see the module docstring).

    Windows stream: :meth:`sums` of each batch add up, and :meth:`from_sums` turns
    the total into the estimate, so a window of any length needs no more memory
    than a batch. ``to_dict``/``from_dict`` store a fitted calibration.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=20_000)
    >>> y = (rng.uniform(size=p.size) < p).astype(int)        # calibrated by construction
    >>> est = CBPE().fit(p, y).estimate(p)
    >>> real = metrics(y, (p >= 0.5).astype(int), proba=p)
    >>> [abs(est[k] - real[k]) < 0.01 for k in ("accuracy", "f1", "roc_auc")]
    [True, True, True]
    >>> halves = CBPE().fit(p, y)
    >>> total = halves.sums(p[:5000]) + halves.sums(p[5000:])
    >>> {k: round(v, 9) for k, v in halves.from_sums(total).items()} == {
    ...     k: round(v, 9) for k, v in est.items()}
    True
    """

    def __init__(self, bins: int = 20, threshold: float = 0.5) -> None:
        self.bins = bins
        self.threshold = threshold
        self._map: npt.NDArray[np.float64] | None = None
        self.multiclass = False

    def fit(self, proba: Any, y_true: Any, positive: Any = 1, classes: Any = None) -> CBPE:
        """Calibrate on a labelled reference: ``proba`` is P(positive) or an (n, k) matrix
        whose columns are ``classes`` (default: the sorted labels)."""
        import numpy as np

        pr = np.asarray(proba, dtype=float)
        y = np.asarray(y_true)
        if pr.ndim == 2:
            self.multiclass = True
            conf = pr.max(axis=1)
            if classes is not None:
                hit = (np.asarray(classes)[pr.argmax(axis=1)] == y).astype(float)
            else:
                hit = (pr.argmax(axis=1) == np.searchsorted(np.unique(y), y)).astype(float)
        else:
            conf, hit = pr, (y == positive).astype(float)
        idx = self._bin(conf)
        sums = np.bincount(idx, weights=hit, minlength=self.bins)
        counts = np.bincount(idx, minlength=self.bins)
        centres = (np.arange(self.bins) + 0.5) / self.bins
        # An empty bin keeps the identity (trust the model where the reference says nothing).
        self._map = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
        return self

    def _bin(self, p: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        import numpy as np

        return np.clip((p * self.bins).astype(np.intp), 0, self.bins - 1)

    def calibrated(self, proba: Any) -> npt.NDArray[np.float64]:
        import numpy as np

        if self._map is None:
            raise InvalidArgumentError(
                "CBPE is not fitted", hint="call fit() on a labelled reference"
            )
        pr = np.asarray(proba, dtype=float)
        conf = pr.max(axis=1) if pr.ndim == 2 else pr
        out: npt.NDArray[np.float64] = self._map[self._bin(conf)]
        return out

    def sums(self, proba: Any) -> npt.NDArray[np.float64]:
        """A batch's expected counts, which add up over batches: for a binary model
        (``proba`` is P(positive)) ``[tp, fp, fn, tn]`` then the expected positives and
        negatives per score cell (:data:`AUC_CELLS` equal cells of [0, 1], for ROC AUC);
        ``[expected hits, rows]`` for a multi-class one."""
        import numpy as np

        pr = np.asarray(proba, dtype=float)
        cal = self.calibrated(pr)
        if pr.ndim == 2:
            return np.array([float(np.sum(cal)), float(len(pr))])
        predicted = pr >= self.threshold
        cells = np.clip((pr * AUC_CELLS).astype(np.intp), 0, AUC_CELLS - 1)
        return np.concatenate([
            [float(np.sum(cal[predicted])), float(np.sum(1 - cal[predicted])),
             float(np.sum(cal[~predicted])), float(np.sum(1 - cal[~predicted]))],
            np.bincount(cells, weights=cal, minlength=AUC_CELLS),
            np.bincount(cells, weights=1 - cal, minlength=AUC_CELLS),
        ])  # fmt: skip

    def from_sums(self, sums: Any) -> dict[str, float]:
        """The estimate from added-up :meth:`sums`: accuracy, and F1 and ROC AUC for a
        binary model. ROC AUC is the expected Mann-Whitney statistic over the score
        cells, ties within a cell counted half (its error is at most the share of
        positive-negative pairs that share a cell)."""
        import numpy as np

        s = np.asarray(sums, dtype=np.float64)
        if len(s) == 2:
            return {"accuracy": float(s[0] / s[1])} if s[1] else {}
        tp, fp, fn, tn = (float(v) for v in s[:4])
        total = tp + fp + fn + tn
        if not total:
            return {}
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        out = {"accuracy": (tp + tn) / total, "f1": f1}
        pos, neg = s[4 : 4 + AUC_CELLS], s[4 + AUC_CELLS :]
        pairs = float(pos.sum() * neg.sum())
        if len(pos) == AUC_CELLS and pairs > 0:
            below = np.cumsum(neg) - neg
            out["roc_auc"] = float(np.sum(pos * (below + 0.5 * neg)) / pairs)
        return out

    def estimate(self, proba: Any) -> dict[str, float]:
        """Expected accuracy (F1 and ROC AUC for binary models) of a window without labels."""
        import numpy as np

        pr = np.asarray(proba, dtype=float)
        if len(pr) == 0:
            return {}
        return self.from_sums(self.sums(pr))

    def to_dict(self) -> dict[str, Any]:
        if self._map is None:
            raise InvalidArgumentError("CBPE is not fitted", hint="call fit() first")
        return {"bins": self.bins, "threshold": self.threshold, "multiclass": self.multiclass,
                "map": [float(v) for v in self._map]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CBPE:
        import numpy as np

        out = cls(bins=int(d["bins"]), threshold=float(d["threshold"]))
        out.multiclass = bool(d["multiclass"])
        out._map = np.asarray(d["map"], dtype=np.float64)
        return out

"""Two model versions' predictions on one dataset version, side by side.

Both models load with :func:`loopline.models.load` and predict on the dataset
version's table (its ``target`` column dropped). Classifiers (label predictions)
are compared by the share of rows predicted alike, regressors (float predictions)
by the mean absolute difference; with a target, each version's accuracy and F1
(binary for 0/1 labels, else macro-averaged) or MAE and RMSE.

>>> import numpy as np
>>> classification_metrics(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]))
{'accuracy': 0.75, 'f1': 0.8}
>>> regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
{'mae': 1.0, 'rmse': 1.4142135623730951}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import InvalidArgumentError, InvalidStateError
from loopline.registry.entities import PredictionComparison

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from loopline.registry.entities import ModelVersion

__all__ = ["classification_metrics", "compare_predictions", "regression_metrics"]


def compare_predictions(
    a: ModelVersion, b: ModelVersion, dataset: str, target: str | None = None
) -> PredictionComparison:
    """Predict with versions ``a`` and ``b`` on ``dataset`` (``NAME@REF``) and compare."""
    from loopline import data
    from loopline.models import load

    version = data.get(dataset)
    frame = version.to_pandas()
    truth: NDArray[Any] | None = None
    if target is not None:
        if target not in frame.columns:
            raise InvalidArgumentError(
                f"{version.ref} has no column {target!r}",
                hint=f"its columns are {', '.join(map(str, frame.columns))}",
            )
        truth = frame[target].to_numpy()
        frame = frame.drop(columns=[target])
    left = _flat(load(a.uri).predict(frame), a, len(frame))
    right = _flat(load(b.uri).predict(frame), b, len(frame))
    found = PredictionComparison(
        dataset=version.ref, rows=len(frame), task="regression", target=target
    )
    if _is_classification(left, right, truth):
        found.task = "classification"
        found.agreement = float(np.mean(left == right)) if len(frame) else float("nan")
        if truth is not None:
            found.metrics_a = classification_metrics(truth, left)
            found.metrics_b = classification_metrics(truth, right)
        return found
    found.mean_abs_diff = float(np.mean(np.abs(left - right))) if len(frame) else float("nan")
    if truth is not None:
        found.metrics_a = regression_metrics(truth.astype(float), left)
        found.metrics_b = regression_metrics(truth.astype(float), right)
    return found


def _flat(predictions: Any, version: ModelVersion, rows: int) -> NDArray[Any]:
    """One prediction per row (an ``(n, 1)`` column becomes ``(n,)``)."""
    out = np.asarray(predictions)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1 or len(out) != rows:
        raise InvalidStateError(
            f"{version.ref} gave predictions of shape {out.shape} for {rows} rows",
            hint="only models predicting one value per row can be compared on a dataset",
        )
    return out


def _is_classification(left: NDArray[Any], right: NDArray[Any], truth: NDArray[Any] | None) -> bool:
    """Labels (integers, booleans, strings) are a classifier's; floats a regressor's,
    unless they are whole numbers and the target holds labels."""
    if left.dtype.kind not in "fc" or right.dtype.kind not in "fc":
        return True
    if truth is None or truth.dtype.kind in "fc":
        return False
    return bool(np.all(np.mod(left, 1) == 0) and np.all(np.mod(right, 1) == 0))


def classification_metrics(truth: NDArray[Any], predicted: NDArray[Any]) -> dict[str, float]:
    """Accuracy and F1: of label 1 when the labels are 0 and 1, else macro-averaged."""
    if truth.dtype.kind in "fc" and predicted.dtype.kind in "iub":
        predicted = predicted.astype(truth.dtype)
    accuracy = float(np.mean(truth == predicted)) if len(truth) else float("nan")
    labels = set(truth.tolist()) | set(predicted.tolist())
    positive = [1] if labels <= {0, 1} and len(labels) == 2 else sorted(labels, key=str)
    scores = [_f1(truth == label, predicted == label) for label in positive]
    return {"accuracy": accuracy, "f1": float(np.mean(scores)) if scores else float("nan")}


def _f1(actual: NDArray[Any], predicted: NDArray[Any]) -> float:
    true_positive = float(np.sum(actual & predicted))
    denominator = float(np.sum(actual) + np.sum(predicted))
    return 2 * true_positive / denominator if denominator else 0.0


def regression_metrics(truth: NDArray[Any], predicted: NDArray[Any]) -> dict[str, float]:
    """Mean absolute error and root mean squared error."""
    error = predicted.astype(float) - truth
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}

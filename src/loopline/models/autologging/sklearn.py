"""scikit-learn: every estimator's ``fit`` logs params, training metrics and the model."""

from __future__ import annotations

import warnings
from typing import Any

from loopline.models.autologging._common import (
    dataset_ref,
    example_of,
    log_dataset,
    log_metrics_safely,
    log_model_safely,
    log_params_safely,
    run_scope,
)
from loopline.models.autologging._patch import guard, is_nested, patch, warn_failure

__all__ = ["fit_arguments", "patch_sklearn", "training_metrics", "wrap_fit"]


def fit_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a ``fit(X, y=None, sample_weight=None, ...)`` call."""
    x = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    return x, y, kwargs.get("sample_weight")


def _classifier_metrics(model: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics

    pred = model.predict(x)
    out = {
        "training_accuracy": metrics.accuracy_score(y, pred, sample_weight=weight),
        "training_f1": metrics.f1_score(y, pred, average="weighted", sample_weight=weight),
        "training_precision": metrics.precision_score(
            y, pred, average="weighted", sample_weight=weight, zero_division=0
        ),
        "training_recall": metrics.recall_score(
            y, pred, average="weighted", sample_weight=weight, zero_division=0
        ),
    }
    if callable(getattr(model, "predict_proba", None)):
        proba = model.predict_proba(x)
        labels = getattr(model, "classes_", None)
        out["training_log_loss"] = metrics.log_loss(y, proba, sample_weight=weight, labels=labels)
        if proba.shape[1] == 2:
            out["training_roc_auc"] = metrics.roc_auc_score(y, proba[:, 1], sample_weight=weight)
        else:
            out["training_roc_auc"] = metrics.roc_auc_score(
                y, proba, multi_class="ovr", sample_weight=weight, labels=labels
            )
    return out


def _regressor_metrics(model: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics

    pred = model.predict(x)
    mse = metrics.mean_squared_error(y, pred, sample_weight=weight)
    return {
        "training_mse": mse,
        "training_rmse": float(mse) ** 0.5,
        "training_mae": metrics.mean_absolute_error(y, pred, sample_weight=weight),
        "training_r2": metrics.r2_score(y, pred, sample_weight=weight),
    }


def training_metrics(model: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    """Scores on the training data: accuracy, F1... for classifiers; MSE, R²... for regressors."""
    from sklearn.base import is_classifier, is_regressor

    if y is None or x is None:
        return {}
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. undefined metrics on a degenerate split
        try:
            if is_classifier(model):
                out.update(_classifier_metrics(model, x, y, weight))
            elif is_regressor(model):
                out.update(_regressor_metrics(model, x, y, weight))
            elif callable(getattr(model, "score", None)):
                out["training_score"] = model.score(x, y)
        except Exception as exc:
            warn_failure("training metrics", exc)
    return {k: float(v) for k, v in out.items()}


def _params(model: Any) -> dict[str, Any]:
    try:
        params: dict[str, Any] = model.get_params(deep=True)
    except Exception as exc:
        warn_failure("params", exc)
        return {}
    return params


def wrap_fit(after: Any = None) -> Any:
    """A ``make(original)`` for :func:`patch`: log around ``fit``; ``after(model, run_id)`` adds."""

    def make(original: Any) -> Any:
        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if is_nested():
                return original(self, *args, **kwargs)
            with guard(), run_scope() as run_id:
                x, y, weight = fit_arguments(args, kwargs)
                log_params_safely(run_id, _params(self))
                if dataset_ref(x) is not None:
                    log_dataset(run_id, x)
                result = original(self, *args, **kwargs)
                log_metrics_safely(run_id, training_metrics(self, x, y, weight))
                if after is not None:
                    after(self, run_id)
                log_model_safely(self, example_of(x))
                return result

        return fit

    return make


def patch_sklearn() -> int:
    """Patch ``fit`` on every scikit-learn estimator class that defines one; the number patched."""
    from sklearn.utils import all_estimators

    count = 0
    for _, cls in all_estimators():
        for klass in cls.__mro__:
            if klass.__module__.startswith("sklearn.") and "fit" in vars(klass):
                count += patch(klass, "fit", wrap_fit())
    return count

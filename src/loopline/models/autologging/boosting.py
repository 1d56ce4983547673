"""XGBoost and LightGBM: native ``train`` and the scikit-learn wrappers' ``fit``.

Both log params, the evaluation metrics of every boosting iteration (as metric
steps, named ``<data>-<metric>`` like ``validation_0-logloss``) and the model;
the wrappers also log training scores as scikit-learn estimators do.
"""

from __future__ import annotations

from typing import Any

from loopline.models.autologging._common import (
    log_iterations,
    log_model_safely,
    log_params_safely,
    run_scope,
)
from loopline.models.autologging._patch import guard, is_nested, patch, warn_failure
from loopline.models.autologging.sklearn import wrap_fit

__all__ = ["patch_lightgbm", "patch_xgboost"]


def _wrapper_classes(module: Any, base: type) -> list[type]:
    return [
        cls
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, base) and "fit" in vars(cls)
    ]


# -- XGBoost ----------------------------------------------------------------------------
def _xgb_history(model: Any, run_id: str) -> None:
    try:
        history = model.evals_result()
    except Exception:  # fitted without eval_set: there is no history
        return
    log_iterations(run_id, history)


def _wrap_xgb_train(original: Any) -> Any:
    def train(params: Any, dtrain: Any, *args: Any, **kwargs: Any) -> Any:
        if is_nested():
            return original(params, dtrain, *args, **kwargs)
        with guard(), run_scope() as run_id:
            history: dict[str, Any] = {}
            if kwargs.get("evals_result") is None:
                kwargs["evals_result"] = history
            else:
                history = kwargs["evals_result"]
            rounds = args[0] if args else kwargs.get("num_boost_round", 10)
            log_params_safely(run_id, {**dict(params or {}), "num_boost_round": rounds})
            booster = original(params, dtrain, *args, **kwargs)
            log_iterations(run_id, history)
            log_model_safely(booster, None)
            return booster

    return train


def patch_xgboost() -> int:
    import xgboost

    count = int(patch(xgboost, "train", _wrap_xgb_train))
    for cls in _wrapper_classes(xgboost, xgboost.XGBModel):
        count += patch(cls, "fit", wrap_fit(after=_xgb_history))
    return count


# -- LightGBM ---------------------------------------------------------------------------
def _lgb_history(model: Any, run_id: str) -> None:
    history = getattr(model, "evals_result_", None)
    if history:
        log_iterations(run_id, history)


def _wrap_lgb_train(original: Any) -> Any:
    def train(params: Any, train_set: Any, *args: Any, **kwargs: Any) -> Any:
        if is_nested():
            return original(params, train_set, *args, **kwargs)
        import lightgbm

        with guard(), run_scope() as run_id:
            history: dict[str, Any] = {}
            try:
                kwargs["callbacks"] = [
                    *(kwargs.get("callbacks") or []),
                    lightgbm.record_evaluation(history),
                ]
            except Exception as exc:
                warn_failure("the evaluation history", exc)
            rounds = args[0] if args else kwargs.get("num_boost_round", 100)
            log_params_safely(run_id, {**dict(params or {}), "num_boost_round": rounds})
            booster = original(params, train_set, *args, **kwargs)
            log_iterations(run_id, history)
            log_model_safely(booster, None)
            return booster

    return train


def patch_lightgbm() -> int:
    import lightgbm

    count = int(patch(lightgbm, "train", _wrap_lgb_train))
    for cls in _wrapper_classes(lightgbm, lightgbm.LGBMModel):
        count += patch(cls, "fit", wrap_fit(after=_lgb_history))
    return count

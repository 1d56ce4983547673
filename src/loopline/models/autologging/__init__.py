"""``autolog()``: log scikit-learn, XGBoost and LightGBM training without changing the code.

Each ``fit`` (and ``xgboost.train``, ``lightgbm.train``) logs, into the active run
(or a run it starts and ends): the model's params, its scores on the training
data, per-iteration evaluation metrics for boosting, the fitted model
(``log_model``, with an input example) and, when the training DataFrame came from
:func:`loopline.data.get` (``df.attrs["loopline.dataset"]``), that dataset version.

Logging failures are reported on the ``loopline.autolog`` logger and never stop
training. ``autolog()`` is idempotent; ``autolog(disable=True)`` (or
:func:`disable`) restores every patched method.

>>> from loopline.models.autologging import autolog, disable
>>> "sklearn" in autolog(libraries=["sklearn"])
True
>>> disable() > 0
True
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from loopline.models.autologging._common import CONFIG
from loopline.models.autologging._patch import patched, unpatch_all

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["LIBRARIES", "autolog", "disable", "patched"]

LIBRARIES = ("sklearn", "xgboost", "lightgbm")


def _patchers() -> dict[str, Callable[[], int]]:
    from loopline.models.autologging.boosting import patch_lightgbm, patch_xgboost
    from loopline.models.autologging.sklearn import patch_sklearn

    return {"sklearn": patch_sklearn, "xgboost": patch_xgboost, "lightgbm": patch_lightgbm}


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    log_input_examples: bool = True,
    libraries: Iterable[str] = LIBRARIES,
) -> list[str]:
    """Turn autologging on (or off with ``disable=True``); the libraries now patched.

    Libraries that are not installed are skipped.
    """
    if disable:
        unpatch_all()
        return []
    CONFIG.log_models = log_models
    CONFIG.log_datasets = log_datasets
    CONFIG.log_input_examples = log_input_examples
    patchers = _patchers()
    done = []
    for name in libraries:
        if name not in patchers:
            from loopline.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"autolog does not know {name!r}", hint=f"use some of {list(LIBRARIES)}"
            )
        if importlib.util.find_spec(name) is None:
            continue
        patchers[name]()
        done.append(name)
    return done


def disable() -> int:
    """Restore every method autolog patched; the number restored."""
    return unpatch_all()

"""Model flavors, found by name and imported only when used (metaflow's plugin style).

Built in: ``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``torch``, ``pyfunc``.
Other packages add flavors through the ``loopline.model_flavors`` entry point group
(``name = "package.module:FlavorClass"``).

>>> sorted(FLAVORS)
['lightgbm', 'onnx', 'pyfunc', 'sklearn', 'torch', 'xgboost']
>>> get_flavor("nope")
Traceback (most recent call last):
...
loopline.errors.MissingDependencyError: the model flavor 'nope' is not installed (pip install 'loopline[nope]')
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from loopline.models.flavors.base import Flavor

__all__ = ["DETECT_ORDER", "FLAVORS", "detect_flavor", "get_flavor"]

FLAVORS: dict[str, str] = {
    "sklearn": "loopline.models.flavors.sklearn:SklearnFlavor",
    "xgboost": "loopline.models.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "loopline.models.flavors.lightgbm:LightGBMFlavor",
    "onnx": "loopline.models.flavors.onnx:OnnxFlavor",
    "torch": "loopline.models.flavors.torch:TorchFlavor",
    "pyfunc": "loopline.models.flavors.pyfunc:PyfuncFlavor",
}
# Specific libraries first: an XGBClassifier is also a scikit-learn estimator.
DETECT_ORDER = ("xgboost", "lightgbm", "onnx", "torch", "sklearn", "pyfunc")
ENTRY_POINT_GROUP = "loopline.model_flavors"


@functools.cache
def _plugins() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


@functools.cache
def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (its module imported now, its library not yet)."""
    target = FLAVORS.get(name) or _plugins().get(name)
    if target is None:
        raise MissingDependencyError(f"the model flavor {name!r}", name)
    module_name, _, attr = target.partition(":")
    cls: Any = getattr(importlib.import_module(module_name), attr)
    flavor: Flavor = cls()
    return flavor


def detect_flavor(model: Any) -> Flavor:
    """The flavor a model in memory belongs to."""
    for name in (*DETECT_ORDER, *sorted(set(_plugins()) - set(FLAVORS))):
        flavor = get_flavor(name)
        if flavor.detect(model):
            return flavor
    raise InvalidArgumentError(
        f"no flavor knows how to save a {type(model).__module__}.{type(model).__qualname__}",
        hint="give a scikit-learn, XGBoost, LightGBM, ONNX or PyTorch model, "
        "or any object with a predict() method",
    )

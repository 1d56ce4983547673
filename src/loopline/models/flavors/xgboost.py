"""XGBoost models in XGBoost's own format (UBJSON by default, or JSON): no pickle.

Both the native ``Booster`` and the scikit-learn wrappers (``XGBClassifier``...) are
kept; a wrapper is rebuilt from its class name, looked up in the ``xgboost``
namespace only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.models.flavors.base import Flavor, Predictor, Saved, require

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["XGBoostFlavor"]

FORMATS = {"ubj": "model.ubj", "json": "model.json"}


def _xgb() -> Any:
    return require("xgboost", "xgboost", "xgboost")


class BoosterPredictor(Predictor):
    """A native Booster: inputs go through a DMatrix."""

    def predict(self, data: Any) -> Any:
        return self.model.predict(_xgb().DMatrix(data))

    @property
    def has_proba(self) -> bool:
        return False


class XGBoostFlavor(Flavor):
    name = "xgboost"
    extra = "xgboost"
    packages = ("xgboost|xgboost-cpu",)  # the CPU-only wheel installs the same module
    modules = ("xgboost",)

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        xgb = _xgb()
        fmt = str(options.get("format", "ubj"))
        if fmt not in FORMATS:
            raise InvalidArgumentError(
                f"unknown XGBoost format {fmt!r}", hint="use 'ubj' or 'json'"
            )
        loader: dict[str, Any] = {"file": FORMATS[fmt], "format": fmt}
        if isinstance(model, xgb.Booster):
            loader["kind"] = "booster"
        elif isinstance(model, xgb.XGBModel):
            loader["kind"] = "sklearn"
            loader["class"] = _public_class(xgb, type(model))
        else:
            raise InvalidArgumentError(f"not an XGBoost model: {type(model).__qualname__}")
        model.save_model(str(dest / loader["file"]))
        return Saved(loader)

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        xgb = _xgb()
        file = str(path / str(loader["file"]))
        if loader.get("kind") == "booster":
            return BoosterPredictor(xgb.Booster(model_file=file))
        cls = getattr(xgb, str(loader.get("class")), None)
        if not (isinstance(cls, type) and issubclass(cls, xgb.XGBModel)):
            raise InvalidArgumentError(f"{loader.get('class')!r} is not an XGBoost model class")
        model = cls()
        model.load_model(file)
        return Predictor(model)

    def wrap(self, model: Any, loader: Mapping[str, Any]) -> Predictor:
        if loader.get("kind") == "booster":
            return BoosterPredictor(model)
        return Predictor(model)


def _public_class(xgb: Any, cls: type) -> str:
    """The name, in the ``xgboost`` namespace, of the class (or nearest base) of a model."""
    for klass in cls.__mro__:
        name: str = klass.__name__
        if getattr(xgb, name, None) is klass:
            return name
    raise InvalidArgumentError(f"{cls.__qualname__} does not derive from an xgboost class")

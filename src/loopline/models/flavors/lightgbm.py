"""LightGBM models in LightGBM's text format: no pickle.

A scikit-learn wrapper (``LGBMClassifier``...) is stored as its booster plus what
the wrapper adds: the estimator kind and, for classifiers, the class labels. It
loads as that booster behind a wrapper that maps probabilities back to labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import InvalidArgumentError
from loopline.models.flavors.base import Flavor, Predictor, Saved, require

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["LightGBMFlavor"]

FILE = "model.txt"


def _lgb() -> Any:
    return require("lightgbm", "lightgbm", "lightgbm")


class BoosterPredictor(Predictor):
    """A LightGBM booster; ``classes`` set for a classifier."""

    def __init__(self, model: Any, classes: list[Any] | None = None) -> None:
        super().__init__(model)
        self.classes = np.asarray(classes) if classes is not None else None

    @property
    def has_proba(self) -> bool:
        return self.classes is not None

    def predict_proba(self, data: Any) -> Any:
        if self.classes is None:
            raise InvalidArgumentError("this LightGBM model is not a classifier")
        raw = np.asarray(self.model.predict(data))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, data: Any) -> Any:
        if self.classes is None:
            return self.model.predict(data)
        return self.classes[np.argmax(self.predict_proba(data), axis=1)]


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    extra = "lightgbm"
    packages = ("lightgbm",)
    modules = ("lightgbm",)

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        lgb = _lgb()
        loader: dict[str, Any] = {"file": FILE}
        if isinstance(model, lgb.Booster):
            booster, loader["kind"] = model, "booster"
        elif isinstance(model, lgb.LGBMModel):
            booster = model.booster_
            if isinstance(model, lgb.LGBMClassifier):
                loader["kind"] = "classifier"
                loader["classes"] = np.asarray(model.classes_).tolist()
            else:
                loader["kind"] = "regressor" if isinstance(model, lgb.LGBMRegressor) else "booster"
        else:
            raise InvalidArgumentError(f"not a LightGBM model: {type(model).__qualname__}")
        booster.save_model(str(dest / FILE))
        return Saved(loader)

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        booster = _lgb().Booster(model_file=str(path / str(loader.get("file", FILE))))
        classes = loader.get("classes") if loader.get("kind") == "classifier" else None
        return BoosterPredictor(booster, classes)

    def wrap(self, model: Any, loader: Mapping[str, Any]) -> Predictor:
        return Predictor(model)

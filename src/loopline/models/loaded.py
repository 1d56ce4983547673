"""The one interface every loaded model shares, whatever its flavor."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidStateError

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.models.flavors.base import Predictor
    from loopline.models.metadata import ModelMetadata
    from loopline.models.signature import Signature

__all__ = ["LoadedModel"]


class LoadedModel:
    """A model ready to predict: ``predict(DataFrame | ndarray | dict)`` checked against
    the signature, ``predict_proba`` where the flavor has it, and what the model
    recorded (``metadata``, ``signature``, ``flavor``, ``requirements``)."""

    def __init__(
        self, predictor: Predictor, metadata: ModelMetadata, path: Path, *, flavor: str
    ) -> None:
        self._predictor = predictor
        self.metadata = metadata
        self.path = path
        self.flavor = flavor
        """The flavor predicting: the model's own, or ``onnx`` when it was preferred."""

    @property
    def signature(self) -> Signature | None:
        return self.metadata.signature

    @property
    def requirements(self) -> list[str]:
        return list(self.metadata.requirements)

    @property
    def raw(self) -> Any:
        """The underlying model object (an estimator, a booster, a session...)."""
        return self._predictor.model

    @functools.cached_property
    def input_example(self) -> Any:
        """The stored input example, or None."""
        name = self.metadata.input_example
        if not name:
            return None
        from loopline.models.examples import read_example

        return read_example(self.path, name)

    def prepare(self, data: Any) -> Any:
        """``data`` checked against the signature and shaped for this flavor."""
        signature = self.metadata.signature
        if signature is not None:
            from loopline.models.signature import enforce

            data = enforce(signature.inputs, data)
        elif isinstance(data, dict):
            from loopline.models.signature import dict_to_frame

            data = dict_to_frame(data)
        if self._predictor.wants_array and hasattr(data, "to_numpy"):
            data = data.to_numpy()
        return data

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (a DataFrame, an ndarray or a dict of columns)."""
        return self._predictor.predict(self.prepare(data))

    @property
    def has_proba(self) -> bool:
        return self._predictor.has_proba

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, for flavors and models that have them."""
        if not self._predictor.has_proba:
            raise InvalidStateError(
                f"this {self.flavor} model has no predict_proba",
                hint="use predict(); only classifiers give probabilities",
            )
        return self._predictor.predict_proba(self.prepare(data))

    def __repr__(self) -> str:
        run = f" run={self.metadata.run.run_id}" if self.metadata.run else ""
        return f"<LoadedModel {self.flavor} {self.path}{run}>"

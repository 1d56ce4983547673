"""ONNX models, run with onnxruntime on the CPU.

A model with one input takes the whole (2-D) array, cast to the input's element
type; a model with one input per column takes a DataFrame's columns by name.
``predict`` answers the first output (or the one the loader names as
``label_output``); ``predict_proba`` the ``proba_output`` when the model has one
(scikit-learn classifiers exported by loopline do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import InvalidArgumentError
from loopline.models.flavors.base import Flavor, Predictor, Saved, require

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["OnnxFlavor", "OnnxPredictor", "session"]

FILE = "model.onnx"
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.str_,
}


def session(source: str | bytes) -> Any:
    """An onnxruntime inference session on the CPU for a file path or serialized bytes."""
    ort = require("onnxruntime", "onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxPredictor(Predictor):
    def __init__(self, sess: Any, loader: Mapping[str, Any]) -> None:
        super().__init__(sess)
        self.inputs = sess.get_inputs()
        self.outputs = [o.name for o in sess.get_outputs()]
        self.label_output = str(loader.get("label_output") or self.outputs[0])
        proba = loader.get("proba_output")
        self.proba_output = str(proba) if proba in self.outputs else None

    def _feed(self, data: Any) -> dict[str, Any]:
        if len(self.inputs) == 1:
            spec = self.inputs[0]
            arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            return {spec.name: arr.astype(_ORT_TYPES.get(spec.type, arr.dtype), copy=False)}
        if not hasattr(data, "columns"):
            names = [i.name for i in self.inputs]
            raise InvalidArgumentError(f"this ONNX model takes one input per column: {names}")
        feed = {}
        for spec in self.inputs:
            column = data[spec.name].to_numpy().reshape(-1, 1)
            feed[spec.name] = column.astype(_ORT_TYPES.get(spec.type, column.dtype), copy=False)
        return feed

    def predict(self, data: Any) -> Any:
        return self.model.run([self.label_output], self._feed(data))[0]

    @property
    def has_proba(self) -> bool:
        return self.proba_output is not None

    def predict_proba(self, data: Any) -> Any:
        if self.proba_output is None:
            raise InvalidArgumentError("this ONNX model has no probabilities output")
        return self.model.run([self.proba_output], self._feed(data))[0]


class OnnxFlavor(Flavor):
    name = "onnx"
    extra = "onnx"
    packages = ("onnxruntime", "onnx")
    modules = ("onnx",)

    @classmethod
    def detect(cls, model: Any) -> bool:
        return super().detect(model) and type(model).__name__ == "ModelProto"

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        (dest / FILE).write_bytes(model.SerializeToString())
        loader: dict[str, Any] = {"file": FILE}
        loader.update({k: options[k] for k in ("label_output", "proba_output") if k in options})
        return Saved(loader)

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        return OnnxPredictor(session(str(path / str(loader.get("file", FILE)))), loader)

    def wrap(self, model: Any, loader: Mapping[str, Any]) -> Predictor:
        return OnnxPredictor(session(model.SerializeToString()), loader)

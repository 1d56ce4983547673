"""Models saved in MLflow's format (an ``MLmodel`` file) load through the same interface.

* ``sklearn`` flavor: skops files load directly (with the types MLflow recorded in
  ``skops_trusted_types``, under the same rules as loopline's own); pickle and
  cloudpickle files need ``trusted=True``.
* ``python_function`` flavor with a pickled ``PythonModel``: ``trusted=True``, and
  mlflow importable (the pickle refers to its classes).
* any other ``python_function`` loader module: delegated to ``mlflow.pyfunc.load_model``,
  with ``trusted=True`` (those loaders unpickle) and mlflow installed.

MLflow records no file digests, so nothing is verified; the MLflow signature, if
any, is translated and enforced like a loopline one.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

import yaml

from loopline.errors import InvalidArgumentError, MissingDependencyError
from loopline.models.flavors import _pickle
from loopline.models.flavors.base import Predictor, require, require_trusted
from loopline.models.flavors.sklearn import load_skops
from loopline.models.metadata import ModelMetadata
from loopline.models.signature import ColumnSpec, Schema, Signature, TensorSpec

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MLMODEL_FILE", "load_mlflow_model", "read_mlflow_metadata"]

MLMODEL_FILE = "MLmodel"
_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "binary": "binary",
    "datetime": "datetime",
}


class PythonModelPredictor(Predictor):
    """An ``mlflow.pyfunc.PythonModel``: ``predict(context, model_input)`` or ``predict(model_input)``."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        params = list(inspect.signature(model.predict).parameters)
        self._context = bool(params) and params[0] == "context"

    def predict(self, data: Any) -> Any:
        if self._context:
            return self.model.predict(None, data)
        return self.model.predict(data)

    @property
    def has_proba(self) -> bool:
        return False


def _schema(text: Any) -> Schema | None:
    specs = json.loads(text) if isinstance(text, str) else text
    if not specs:
        return None
    if all(s.get("type") == "tensor" for s in specs) and len(specs) == 1:
        tensor = specs[0]["tensor-spec"]
        return Schema(tensor=TensorSpec(str(tensor["dtype"]), tuple(tensor["shape"])))
    if all("name" in s for s in specs):
        return Schema(
            columns=tuple(
                ColumnSpec(str(s["name"]), _TYPES.get(s["type"], "object")) for s in specs
            )
        )
    if len(specs) == 1:  # one unnamed column: a vector
        return Schema(tensor=TensorSpec(_TYPES.get(specs[0]["type"], "object"), (-1,)))
    return None


def _signature(mlmodel: dict[str, Any]) -> Signature | None:
    sig = mlmodel.get("signature") or {}
    inputs = _schema(sig.get("inputs"))
    if inputs is None:
        return None
    return Signature(inputs, _schema(sig.get("outputs")))


def _read_mlmodel(path: Path) -> dict[str, Any]:
    data = yaml.safe_load((path / MLMODEL_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise InvalidArgumentError(f"{path / MLMODEL_FILE} is not an MLflow model file")
    return data


def read_mlflow_metadata(path: Path) -> ModelMetadata:
    """The MLflow model at ``path`` described as loopline metadata (no files, no digests)."""
    mlmodel = _read_mlmodel(path)
    flavors: dict[str, Any] = mlmodel["flavors"]
    name = "sklearn" if "sklearn" in flavors else "python_function"
    pyfunc = flavors.get("python_function") or {}
    requirements: list[str] = []
    req_file = path / "requirements.txt"
    if req_file.is_file():
        requirements = [
            line.strip()
            for line in req_file.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    example = (mlmodel.get("saved_input_example_info") or {}).get("artifact_path")
    return ModelMetadata(
        flavor=f"mlflow.{name}",
        loader=dict(flavors.get(name) or {}),
        signature=_signature(mlmodel),
        python_version=str(pyfunc.get("python_version", "")),
        requirements=requirements,
        metadata={"mlflow_version": mlmodel.get("mlflow_version"), "input_example_file": example},
    )


def load_mlflow_model(path: Path, *, trusted: bool) -> tuple[Predictor, ModelMetadata]:
    """The predictor and metadata of the MLflow model at ``path``."""
    meta = read_mlflow_metadata(path)
    flavors: dict[str, Any] = _read_mlmodel(path)["flavors"]
    if "sklearn" in flavors:
        info = flavors["sklearn"]
        file = path / str(info.get("pickled_model", "model.pkl"))
        fmt = str(info.get("serialization_format") or "cloudpickle")
        require("sklearn", "scikit-learn", "sklearn")
        if fmt == "skops":
            recorded = list(info.get("skops_trusted_types") or [])
            return Predictor(load_skops(file, recorded, trusted=trusted)), meta
        model = _pickle.load(
            file, fmt, trusted=trusted, what=f"MLflow model {file.name}", extra="sklearn"
        )
        return Predictor(model), meta
    pyfunc = flavors.get("python_function")
    if pyfunc is None:
        raise InvalidArgumentError(
            f"the MLflow model at {path} has neither the sklearn nor the python_function flavor "
            f"(it has {sorted(flavors)})"
        )
    if "python_model" in pyfunc:
        file = path / str(pyfunc["python_model"])
        require_trusted(trusted, f"MLflow model {file.name} is a pickled PythonModel")
        _require_mlflow()
        return PythonModelPredictor(
            _pickle.load(file, "cloudpickle", trusted=True, what=file.name, extra="pyfunc")
        ), meta
    require_trusted(trusted, f"MLflow model loader {pyfunc.get('loader_module')!r}")
    mlflow_pyfunc = _require_mlflow()
    return Predictor(mlflow_pyfunc.load_model(str(path))), meta


def _require_mlflow() -> Any:
    try:
        import mlflow.pyfunc
    except ImportError as exc:
        raise MissingDependencyError("mlflow", "mlflow") from exc
    return mlflow.pyfunc

"""``loopline-model.yaml``: what a model directory holds and how to load it.

::

    format_version: 1
    flavor: sklearn
    loader: {file: model.skops, serialization: skops, trusted_types: [...]}
    signature: {inputs: {type: columns, columns: [...]}, outputs: {type: tensor, ...}}
    input_example: input_example.parquet
    python_version: 3.11.7
    requirements: [scikit-learn==1.9.1, skops==0.16.0, ...]
    created_at: 1764225600000
    loopline_version: 0.1.0
    run: {run_id: ..., metrics: {...}, datasets: [{ref: wine@3, context: training}]}
    alternatives: {onnx: {file: model.onnx, max_abs_diff: 1.2e-07, ...}}
    metadata: {...}                # the user's own
    files: [{path: model.skops, size: 100935, digest: blake3:...}, ...]

>>> meta = ModelMetadata(flavor="pyfunc", loader={"file": "model.pkl"})
>>> ModelMetadata.from_yaml(meta.to_yaml()) == meta
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from loopline.errors import InvalidArgumentError, InvalidStateError
from loopline.models.files import FileEntry
from loopline.models.signature import Signature

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FORMAT_VERSION", "MODEL_FILE", "ModelMetadata", "RunProvenance", "read_metadata"]

FORMAT_VERSION = 1
MODEL_FILE = "loopline-model.yaml"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True, slots=True)
class RunProvenance:
    """The run that made the model: its id, final metrics and the dataset versions it read."""

    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict[str, str]] = field(default_factory=list)
    """``{"ref": "name@version", "context": "training"}`` entries."""

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "metrics": self.metrics, "datasets": self.datasets}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunProvenance:
        return cls(
            str(data["run_id"]),
            {str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
            [dict(d) for d in data.get("datasets") or []],
        )


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """The parsed ``loopline-model.yaml``."""

    flavor: str
    loader: dict[str, Any]
    format_version: int = FORMAT_VERSION
    signature: Signature | None = None
    input_example: str | None = None
    python_version: str = ""
    requirements: list[str] = field(default_factory=list)
    created_at: int = 0
    loopline_version: str = ""
    run: RunProvenance | None = None
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "loader": self.loader,
        }
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.input_example:
            out["input_example"] = self.input_example
        out["python_version"] = self.python_version
        out["requirements"] = self.requirements
        out["created_at"] = self.created_at
        out["loopline_version"] = self.loopline_version
        if self.run is not None:
            out["run"] = self.run.to_dict()
        if self.alternatives:
            out["alternatives"] = self.alternatives
        if self.metadata:
            out["metadata"] = self.metadata
        out["files"] = [f.to_dict() for f in self.files]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        version = int(data.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise InvalidStateError(
                f"this model was saved in format version {version}; this loopline reads up to "
                f"{FORMAT_VERSION}",
                hint="upgrade loopline: pip install -U loopline",
            )
        if not data.get("flavor"):
            raise InvalidArgumentError(f"{MODEL_FILE} names no flavor")
        signature = data.get("signature")
        run = data.get("run")
        return cls(
            flavor=str(data["flavor"]),
            loader=dict(data.get("loader") or {}),
            format_version=version,
            signature=Signature.from_dict(signature) if signature else None,
            input_example=data.get("input_example"),
            python_version=str(data.get("python_version", "")),
            requirements=[str(r) for r in data.get("requirements") or []],
            created_at=int(data.get("created_at", 0)),
            loopline_version=str(data.get("loopline_version", "")),
            run=RunProvenance.from_dict(run) if run else None,
            alternatives=dict(data.get("alternatives") or {}),
            metadata=dict(data.get("metadata") or {}),
            files=[FileEntry.from_dict(f) for f in data.get("files") or []],
        )

    def to_yaml(self) -> str:
        text: str = yaml.dump(
            self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )
        return text

    @classmethod
    def from_yaml(cls, text: str | bytes) -> ModelMetadata:
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"{MODEL_FILE} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{MODEL_FILE} does not hold a mapping")
        return cls.from_dict(data)


def read_metadata(path: Path) -> ModelMetadata:
    """The metadata of the model directory at ``path``."""
    return ModelMetadata.from_yaml((path / MODEL_FILE).read_bytes())

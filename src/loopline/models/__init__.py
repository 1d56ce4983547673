"""Models: a portable, verified model format, flavors, and loading from anywhere.

``save_model(model, path)`` writes a folder with ``loopline-model.yaml`` (flavor,
loader, signature, input example, Python and package versions, the run's metrics
and dataset versions, and every file's blake3 digest); ``load(uri)`` reads it back
from a path, ``runs:/RUN/PATH`` or ``models:/NAME@ALIAS``, verifying every file;
``log_model`` saves into the active run; ``autolog()`` logs scikit-learn, XGBoost
and LightGBM training by itself; ``env(uri)`` prints a requirements file.

Nothing heavy loads on ``import loopline.models``; each flavor imports its library
when used.

>>> import loopline.models
>>> loopline.models.load.__module__
'loopline.models.loading'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.errors import SignatureError, UntrustedModelError
    from loopline.models.autologging import autolog
    from loopline.models.environment import env
    from loopline.models.loaded import LoadedModel
    from loopline.models.loading import load, read_model_metadata
    from loopline.models.log import ModelInfo, log_model
    from loopline.models.metadata import ModelMetadata, RunProvenance
    from loopline.models.saving import save_model
    from loopline.models.signature import (
        ColumnSpec,
        Schema,
        Signature,
        TensorSpec,
        infer_signature,
    )

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "ModelInfo",
    "ModelMetadata",
    "RunProvenance",
    "Schema",
    "Signature",
    "SignatureError",
    "TensorSpec",
    "UntrustedModelError",
    "autolog",
    "env",
    "infer_signature",
    "load",
    "log_model",
    "read_model_metadata",
    "save_model",
]

_LAZY = {
    "ColumnSpec": "loopline.models.signature",
    "LoadedModel": "loopline.models.loaded",
    "ModelInfo": "loopline.models.log",
    "ModelMetadata": "loopline.models.metadata",
    "RunProvenance": "loopline.models.metadata",
    "Schema": "loopline.models.signature",
    "Signature": "loopline.models.signature",
    "SignatureError": "loopline.errors",
    "TensorSpec": "loopline.models.signature",
    "UntrustedModelError": "loopline.errors",
    "autolog": "loopline.models.autologging",
    "env": "loopline.models.environment",
    "infer_signature": "loopline.models.signature",
    "load": "loopline.models.loading",
    "log_model": "loopline.models.log",
    "read_model_metadata": "loopline.models.loading",
    "save_model": "loopline.models.saving",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""PyTorch modules (the ``torch`` extra; torch is imported only when used).

Two ways to store a module:

* ``mode="state_dict"`` (the default): the weights, read back with
  ``torch.load(weights_only=True)`` (no pickle of code), plus the module's class as
  ``module:Class`` and the keyword arguments that build it (``init_kwargs``). The
  class must be importable where the model loads.
* ``mode="export"``: a ``torch.export`` program (``model.pt2``), built from the
  input example with a dynamic batch dimension. It needs no class at load time,
  but torch may unpickle while reading it, so loading needs ``trusted=True``.

Inputs reach the module as one float32 tensor (``dtype`` in the options changes
that); outputs come back as NumPy arrays.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import InvalidArgumentError
from loopline.models.flavors.base import (
    Flavor,
    Predictor,
    Saved,
    import_object,
    object_path,
    require,
    require_trusted,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["TorchFlavor"]

WEIGHTS = "model.pt"
EXPORTED = "model.pt2"


def _torch() -> Any:
    return require("torch", "torch", "torch")


class TorchPredictor(Predictor):
    wants_array = True

    def __init__(self, model: Any, dtype: str = "float32") -> None:
        super().__init__(model)
        self.dtype = dtype

    def predict(self, data: Any) -> Any:
        torch = _torch()
        arr = np.ascontiguousarray(np.asarray(data), dtype=np.dtype(self.dtype))
        with torch.no_grad():
            out = self.model(torch.from_numpy(arr))
        return out.detach().cpu().numpy() if hasattr(out, "detach") else out

    @property
    def has_proba(self) -> bool:
        return False


class TorchFlavor(Flavor):
    name = "torch"
    extra = "torch"
    packages = ("torch",)
    modules = ("torch",)

    @classmethod
    def detect(cls, model: Any) -> bool:
        import sys

        torch = sys.modules.get("torch")  # a torch module exists only if torch is imported
        return torch is not None and isinstance(model, torch.nn.Module)

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        torch = _torch()
        mode = str(options.get("mode", "state_dict"))
        dtype = str(options.get("dtype", "float32"))
        loader: dict[str, Any] = {"mode": mode, "dtype": dtype}
        if mode == "state_dict":
            loader["class"] = object_path(model)
            init_kwargs = dict(options.get("init_kwargs") or {})
            json.dumps(init_kwargs)  # must be plain data: it goes into the YAML file
            loader["init_kwargs"] = init_kwargs
            loader["file"] = WEIGHTS
            torch.save(model.state_dict(), dest / WEIGHTS)
        elif mode == "export":
            example = options.get("example")
            if example is None:
                raise InvalidArgumentError("mode='export' needs an input_example to trace with")
            tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(example), dtype=dtype))
            batch = torch.export.Dim("batch")
            program = torch.export.export(
                model.eval(), (tensor,), dynamic_shapes=({0: batch},), strict=False
            )
            torch.export.save(program, dest / EXPORTED)
            loader["file"] = EXPORTED
        else:
            raise InvalidArgumentError(
                f"unknown torch mode {mode!r}", hint="use 'state_dict' or 'export'"
            )
        return Saved(loader)

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        torch = _torch()
        dtype = str(loader.get("dtype", "float32"))
        file = path / str(loader.get("file", WEIGHTS))
        if loader.get("mode") == "export":
            require_trusted(trusted, f"{file.name} is a torch.export program")
            return TorchPredictor(torch.export.load(file).module(), dtype)
        cls = import_object(str(loader["class"]))
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise InvalidArgumentError(f"{loader['class']} is not a torch.nn.Module class")
        module = cls(**dict(loader.get("init_kwargs") or {}))
        module.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        return TorchPredictor(module.eval(), dtype)

    def wrap(self, model: Any, loader: Mapping[str, Any]) -> Predictor:
        return TorchPredictor(model.eval(), str(loader.get("dtype", "float32")))

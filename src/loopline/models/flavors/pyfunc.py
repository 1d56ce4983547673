"""Generic Python models: any object with ``predict``.

Two ways to store one:

* **by import path**, no pickle: when the class has a ``load(path)`` classmethod and
  the object a ``save(path)`` method, ``save(path)`` writes into ``data/`` and the
  class is recorded as ``module:Class``; loading imports it and calls
  ``Class.load(path)``. The class must be importable where the model loads.
* **cloudpickle**, for everything else; such a model loads with ``trusted=True`` only.

``serialization="cloudpickle"`` or ``"import"`` in the options forces one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.models.flavors import _pickle
from loopline.models.flavors.base import Flavor, Predictor, Saved, import_object, object_path

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["PyfuncFlavor"]

DATA_DIR = "data"
PICKLE_FILE = "model.pkl"


def _importable(model: Any) -> bool:
    cls = type(model)
    return callable(getattr(cls, "load", None)) and callable(getattr(model, "save", None))


class PyfuncFlavor(Flavor):
    name = "pyfunc"
    extra = "pyfunc"
    packages = ()
    modules = ()

    @classmethod
    def detect(cls, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        default = "import" if _importable(model) else "cloudpickle"
        serialization = str(options.get("serialization", default))
        if serialization == "import":
            if not _importable(model):
                raise InvalidArgumentError(
                    f"{type(model).__qualname__} needs a save(path) method and a load(path) "
                    "classmethod to be stored by import path"
                )
            loader: dict[str, Any] = {"serialization": "import", "class": object_path(model)}
            (dest / DATA_DIR).mkdir()
            model.save(dest / DATA_DIR)
            loader["data"] = DATA_DIR
            return Saved(loader)
        packages = _pickle.dump(model, dest / PICKLE_FILE, serialization, extra=self.extra)
        return Saved({"serialization": serialization, "file": PICKLE_FILE}, packages)

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        serialization = str(loader.get("serialization", "cloudpickle"))
        if serialization != "import":
            file = path / str(loader.get("file", PICKLE_FILE))
            model = _pickle.load(
                file, serialization, trusted=trusted, what=file.name, extra=self.extra
            )
            return Predictor(model)
        cls = import_object(str(loader["class"]))
        load = getattr(cls, "load", None)
        if (
            not isinstance(cls, type)
            or not callable(load)
            or not callable(getattr(cls, "predict", None))
        ):
            raise InvalidArgumentError(
                f"{loader['class']} is not a class with a load(path) classmethod and predict()"
            )
        return Predictor(load(path / str(loader.get("data", DATA_DIR))))

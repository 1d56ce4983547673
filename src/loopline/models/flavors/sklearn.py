"""scikit-learn models, saved with skops: loading runs no pickle.

skops refuses types outside its safe set unless they are trusted by name. At save
time the flavor records the types the file needs (``trusted_types``); at load
time a file needing any other type is refused unless ``trusted=True``. As a second
guard, recorded types are only accepted from scikit-learn, NumPy and SciPy: a
recorded type from any other module (your own transformer, say) needs
``trusted=True`` too, because whoever can write the model folder can write its
YAML file. ``serialization="cloudpickle"`` (or ``"pickle"``) is there for models
skops cannot write; those always load with ``trusted=True`` only.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, UntrustedModelError
from loopline.models.flavors import _pickle
from loopline.models.flavors.base import Flavor, Predictor, Saved, require

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["SKOPS_FILE", "SklearnFlavor", "check_skops_types"]

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"
SAFE_MODULES = ("sklearn.", "numpy.", "scipy.")
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def skops_io() -> types.ModuleType:
    """``skops.io``, imported without pulling in PyTorch.

    At import, skops lists its trusted types by importing every scikit-learn module,
    and one of them, the array-API shim for torch, imports torch when it is installed:
    seconds added to every process that saves or loads a model. During that import
    the shim is a placeholder (it defines no estimator); afterwards it imports as usual.
    """
    found = sys.modules.get("skops.io")
    if found is not None:
        return found
    placeholder = None
    if "torch" not in sys.modules and _TORCH_SHIM not in sys.modules:
        placeholder = sys.modules[_TORCH_SHIM] = types.ModuleType(_TORCH_SHIM)
    try:
        return require("skops.io", "skops", "sklearn")
    finally:
        if placeholder is not None and sys.modules.get(_TORCH_SHIM) is placeholder:
            del sys.modules[_TORCH_SHIM]


def check_skops_types(found: list[str], recorded: list[str], *, file: str) -> None:
    """Refuse skops types that were not recorded, or that come from outside the safe modules.

    >>> check_skops_types(["sklearn.tree._tree.Tree"], ["sklearn.tree._tree.Tree"], file="m")
    >>> check_skops_types(["os.system"], [], file="m")
    Traceback (most recent call last):
    ...
    loopline.errors.UntrustedModelError: m needs types that were not recorded when it was saved: ['os.system'] (load it with trusted=True only if you trust its source)
    """
    unexpected = sorted(set(found) - set(recorded))
    if unexpected:
        raise UntrustedModelError(
            f"{file} needs types that were not recorded when it was saved: {unexpected}",
            hint="load it with trusted=True only if you trust its source",
        )
    foreign = sorted(t for t in found if not t.startswith(SAFE_MODULES))
    if foreign:
        raise UntrustedModelError(
            f"{file} needs types from outside scikit-learn, NumPy and SciPy: {foreign}",
            hint="load it with trusted=True if you trust its source and those modules",
        )


class SklearnFlavor(Flavor):
    name = "sklearn"
    extra = "sklearn"
    packages = ("scikit-learn",)
    modules = ("sklearn",)

    @classmethod
    def detect(cls, model: Any) -> bool:
        if super().detect(model):
            return True
        # A scikit-learn compatible estimator from elsewhere (imblearn, a user class).
        base = type(model).__mro__
        return any(c.__module__ == "sklearn.base" and c.__name__ == "BaseEstimator" for c in base)

    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        serialization = str(options.get("serialization", "skops"))
        loader: dict[str, Any] = {
            "serialization": serialization,
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        }
        if serialization != "skops":
            loader["file"] = PICKLE_FILE
            return Saved(
                loader, _pickle.dump(model, dest / PICKLE_FILE, serialization, extra=self.extra)
            )
        sio = skops_io()
        file = dest / SKOPS_FILE
        try:
            sio.dump(model, file)
        except Exception as exc:
            raise InvalidArgumentError(
                f"skops cannot save this {type(model).__qualname__}: {exc}",
                hint="pass options={'serialization': 'cloudpickle'} (then loads need trusted=True)",
            ) from exc
        loader["file"] = SKOPS_FILE
        loader["trusted_types"] = sorted(sio.get_untrusted_types(file=file))
        return Saved(loader, ["skops"])

    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        require("sklearn", "scikit-learn", "sklearn")
        serialization = str(loader.get("serialization", "skops"))
        file = path / str(loader.get("file", SKOPS_FILE))
        if serialization != "skops":
            model = _pickle.load(
                file, serialization, trusted=trusted, what=file.name, extra=self.extra
            )
            return Predictor(model)
        return Predictor(load_skops(file, list(loader.get("trusted_types") or []), trusted=trusted))


def load_skops(file: Path, recorded: list[str], *, trusted: bool) -> Any:
    """Load a skops file trusting exactly the recorded types (every type with ``trusted``).

    One pass over the file: skops itself refuses a type outside ``recorded``; only
    then is the file scanned again, to name the unexpected types.
    """
    sio = skops_io()
    if trusted:
        return sio.load(file, trusted=list(sio.get_untrusted_types(file=file)))
    check_skops_types(recorded, recorded, file=file.name)  # recorded types from safe modules
    exceptions = require("skops.io.exceptions", "skops", "sklearn")
    try:
        return sio.load(file, trusted=recorded)
    except exceptions.UntrustedTypesFoundException as exc:
        found = list(sio.get_untrusted_types(file=file))
        check_skops_types(found, recorded, file=file.name)
        raise UntrustedModelError(f"{file.name}: {exc}") from exc

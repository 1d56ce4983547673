"""What every flavor implements, and the small helpers they share.

A flavor knows one kind of model: how to recognise it (:meth:`Flavor.detect`,
without importing its library), how to write it to a folder (:meth:`Flavor.save`),
how to read it back (:meth:`Flavor.load`) and how to wrap a model in memory
(:meth:`Flavor.wrap`) so that predictions go through the same code either way.
"""

from __future__ import annotations

import abc
import importlib
import importlib.metadata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from loopline.errors import InvalidArgumentError, MissingDependencyError, UntrustedModelError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import ModuleType

__all__ = [
    "Flavor",
    "Predictor",
    "Saved",
    "import_object",
    "object_path",
    "pinned",
    "require",
    "require_trusted",
]


class Predictor:
    """A model ready to predict. ``wants_array``: give it an ndarray, never a DataFrame."""

    wants_array: ClassVar[bool] = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any) -> Any:
        return self.model.predict(data)

    @property
    def has_proba(self) -> bool:
        return callable(getattr(self.model, "predict_proba", None))

    def predict_proba(self, data: Any) -> Any:
        return self.model.predict_proba(data)


@dataclass(slots=True)
class Saved:
    """What :meth:`Flavor.save` wrote: how to load it and what it needs installed."""

    loader: dict[str, Any]
    packages: list[str] = field(default_factory=list)
    """Distributions beyond the flavor's own (e.g. ``cloudpickle`` for pickled models)."""


class Flavor(abc.ABC):
    """One kind of model."""

    name: ClassVar[str]
    extra: ClassVar[str]
    """The loopline extra that installs what it needs: ``pip install 'loopline[extra]'``."""
    packages: ClassVar[tuple[str, ...]] = ()
    """Distributions pinned in the model's requirements (``a|b``: whichever is installed)."""
    modules: ClassVar[tuple[str, ...]] = ()
    """Top-level modules whose types this flavor claims (checked without importing)."""

    @classmethod
    def detect(cls, model: Any) -> bool:
        """True when ``model`` belongs to this flavor (no import of the flavor's library)."""
        module = type(model).__module__.partition(".")[0]
        return module in cls.modules

    @abc.abstractmethod
    def save(self, model: Any, dest: Path, options: Mapping[str, Any]) -> Saved:
        """Write ``model``'s files into the (existing, empty) folder ``dest``."""

    @abc.abstractmethod
    def load(self, path: Path, loader: Mapping[str, Any], *, trusted: bool) -> Predictor:
        """Read the model saved in ``path`` (files already verified)."""

    def wrap(self, model: Any, loader: Mapping[str, Any]) -> Predictor:
        """The in-memory ``model`` behind the same interface as a loaded one."""
        return Predictor(model)


def require(module: str, package: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra) from exc


def require_trusted(trusted: bool, what: str) -> None:
    """Refuse to unpickle unless the caller said the source is trusted."""
    if not trusted:
        raise UntrustedModelError(
            f"{what}: loading it runs code chosen by whoever wrote the file",
            hint="load it with trusted=True only if you trust its source",
        )


def pinned(distribution: str) -> str | None:
    """``name==version`` of an installed distribution (local labels like ``+cpu`` dropped)."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{distribution}=={version.partition('+')[0]}"


def object_path(obj: Any) -> str:
    """``module:QualName`` of a class (or of an instance's class) that can be imported again."""
    cls = obj if isinstance(obj, type) else type(obj)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise InvalidArgumentError(
            f"{qualname} is defined in {'__main__' if module == '__main__' else 'a function'} "
            "and cannot be imported by whoever loads the model",
            hint="move the class into a module, or save the model with pickling (trusted loads)",
        )
    path = f"{module}:{qualname}"
    if import_object(path) is not cls:
        raise InvalidArgumentError(f"{path} does not import back to the same object")
    return path


def import_object(path: str) -> Any:
    """The object ``module:QualName`` names (importing its module)."""
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise InvalidArgumentError(f"invalid import path {path!r}", hint="use module:ClassName")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"cannot import {module_name!r} (named by the model as {path!r}): {exc}",
            hint="install the package that defines the model's class",
        ) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidArgumentError(f"{module_name} has no {qualname!r}") from None
    return obj

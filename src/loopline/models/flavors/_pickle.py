"""Pickled models: written with cloudpickle (or pickle), read only when trusted."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.models.flavors.base import require, require_trusted

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["PICKLE_FORMATS", "dump", "load"]

PICKLE_FORMATS = ("cloudpickle", "pickle")


def dump(obj: Any, file: Path, serialization: str, *, extra: str) -> list[str]:
    """Write ``obj``; the distributions needed to read it back."""
    if serialization not in PICKLE_FORMATS:
        raise InvalidArgumentError(f"unknown serialization {serialization!r}")
    with open(file, "wb") as fh:
        if serialization == "cloudpickle":
            require("cloudpickle", "cloudpickle", extra).dump(obj, fh)
            return ["cloudpickle"]
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return []


def load(file: Path, serialization: str, *, trusted: bool, what: str, extra: str) -> Any:
    """Read a pickled object, after ``trusted=True`` said the source may run code here."""
    require_trusted(trusted, f"{what} is stored with {serialization}")
    if serialization == "cloudpickle":
        require("cloudpickle", "cloudpickle", extra)  # its pickles need it importable
    with open(file, "rb") as fh:
        return pickle.load(fh)

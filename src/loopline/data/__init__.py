"""Data versioning: content-addressed datasets with lineage, without git.

``loopline.data.add(path, name)`` records a file or a folder as an immutable
version; ``loopline.data.get("NAME@REF")`` gives it back (``.path``, ``.files``,
``.to_pandas()``), recording lineage when a run is active. References:
``NAME``/``NAME@latest``, ``NAME@3``, ``NAME@TAG``, ``NAME@sha:PREFIX``.

Everything loads lazily: ``import loopline.data`` imports neither SQLAlchemy nor
pandas, so the CLI's ``add`` and ``status`` stay fast.

>>> import loopline.data
>>> loopline.data.add.__module__
'loopline.data.api'
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.data.api import (
        add,
        checkout,
        diff,
        gc,
        get,
        lineage,
        list_datasets,
        log_input,
        pull,
        push,
        status,
        tag,
        verify,
        versions,
    )
    from loopline.data.entities import (
        Change,
        CheckoutResult,
        Diff,
        GcResult,
        Lineage,
        Status,
        TransferResult,
        VerifyReport,
    )
    from loopline.data.manifest import Entry, Manifest
    from loopline.data.refs import Ref, parse_ref
    from loopline.data.version import DatasetVersion

__all__ = [
    "Change",
    "CheckoutResult",
    "DatasetVersion",
    "Diff",
    "Entry",
    "GcResult",
    "Lineage",
    "Manifest",
    "Ref",
    "Status",
    "TransferResult",
    "VerifyReport",
    "add",
    "checkout",
    "diff",
    "gc",
    "get",
    "lineage",
    "list_datasets",
    "log_input",
    "parse_ref",
    "pull",
    "push",
    "status",
    "tag",
    "verify",
    "versions",
]

_API = "loopline.data.api"
_ENTITIES = "loopline.data.entities"
_FUNCTIONS = frozenset(
    {
        "add",
        "checkout",
        "diff",
        "gc",
        "get",
        "lineage",
        "list_datasets",
        "log_input",
        "pull",
        "push",
        "status",
        "tag",
        "verify",
        "versions",
    }
)
_LAZY = {
    "Change": _ENTITIES,
    "CheckoutResult": _ENTITIES,
    "DatasetVersion": "loopline.data.version",
    "Diff": _ENTITIES,
    "Entry": "loopline.data.manifest",
    "GcResult": _ENTITIES,
    "Lineage": _ENTITIES,
    "Manifest": "loopline.data.manifest",
    "Ref": "loopline.data.refs",
    "Status": _ENTITIES,
    "TransferResult": _ENTITIES,
    "VerifyReport": _ENTITIES,
    "parse_ref": "loopline.data.refs",
    **dict.fromkeys(_FUNCTIONS, _API),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``loopline.data`` itself: its operation modules never hide its functions.

    Importing a submodule sets it as an attribute of its package, so importing
    ``loopline.data.add`` (the module of the ``add`` operation) would replace the
    function ``loopline.data.add``. This class drops those assignments; the
    modules stay importable by their full names.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

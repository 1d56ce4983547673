"""The model registry: registered models, immutable versions, aliases, reviews, lineage.

``loopline.registry.register_model("runs:/RUN/model", "churn")`` records a new
version (its files copied, so it never changes); ``set_alias("churn", "champion",
3)`` moves an alias atomically and keeps its history; ``resolve("churn@champion")``
answers which version an alias, a number, ``latest`` or a ``models:/`` URI names;
``download_model(uri, dest)`` materialises a version's files with their digests
checked. Models that require approval start their versions ``pending_review``; a
protected alias only points at approved versions. Every change is an event.

The same functions work on the embedded store and through ``loopline server``
(an ``http://`` tracking URI); everything loads lazily.

>>> import loopline.registry
>>> loopline.registry.resolve.__module__
'loopline.registry.api'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.registry.api import (
        alias_history,
        approve,
        compare_versions,
        create_logged_model,
        create_registered_model,
        delete_alias,
        delete_model_version,
        download_model,
        get_client,
        get_model_version,
        get_registered_model,
        lineage,
        list_versions,
        register_model,
        reject,
        request_review,
        resolve,
        search_registered_models,
        set_alias,
    )
    from loopline.registry.client import RegistryClient
    from loopline.registry.entities import (
        Alias,
        AliasChange,
        LoggedModel,
        ModelVersion,
        PredictionComparison,
        RegisteredModel,
        Review,
        ReviewStatus,
        VersionComparison,
        VersionLineage,
    )

__all__ = [
    "Alias",
    "AliasChange",
    "LoggedModel",
    "ModelVersion",
    "PredictionComparison",
    "RegisteredModel",
    "RegistryClient",
    "Review",
    "ReviewStatus",
    "VersionComparison",
    "VersionLineage",
    "alias_history",
    "approve",
    "compare_versions",
    "create_logged_model",
    "create_registered_model",
    "delete_alias",
    "delete_model_version",
    "download_model",
    "get_client",
    "get_model_version",
    "get_registered_model",
    "lineage",
    "list_versions",
    "register_model",
    "reject",
    "request_review",
    "resolve",
    "search_registered_models",
    "set_alias",
]

_ENTITIES = "loopline.registry.entities"
_LAZY = dict.fromkeys(
    (
        "Alias",
        "AliasChange",
        "LoggedModel",
        "ModelVersion",
        "PredictionComparison",
        "RegisteredModel",
        "Review",
        "ReviewStatus",
        "VersionComparison",
        "VersionLineage",
    ),
    _ENTITIES,
)
_LAZY["RegistryClient"] = "loopline.registry.client"
_LAZY.update({name: "loopline.registry.api" for name in __all__ if name not in _LAZY})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

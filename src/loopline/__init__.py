"""loopline: MLOps in one package.

The SDK surface: tracking functions (``set_experiment``, ``start_run``,
``log_metric``...), the :class:`Client`, and the error tree. Everything loads
lazily, so ``import loopline`` stays fast and pulls in neither SQLAlchemy nor
pandas until they are needed.

>>> import loopline
>>> loopline.__version__ == loopline._version.__version__
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopline._version import __version__

if TYPE_CHECKING:
    from loopline import data, models, monitoring, pipelines, registry, serving
    from loopline.client.client import Client
    from loopline.errors import LooplineError
    from loopline.models.autologging import autolog
    from loopline.models.log import log_model
    from loopline.pipelines import pipeline, step, sweep
    from loopline.tracking.fluent import (
        ActiveRun,
        active_run,
        delete_tag,
        end_run,
        flush,
        get_client,
        get_metric_history,
        get_run,
        get_tracking_uri,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )

__all__ = [
    "ActiveRun",
    "Client",
    "LooplineError",
    "__version__",
    "active_run",
    "autolog",
    "data",
    "delete_tag",
    "end_run",
    "flush",
    "get_client",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "models",
    "monitoring",
    "pipeline",
    "pipelines",
    "registry",
    "search_runs",
    "serving",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "sweep",
]

# Subpackages reachable as attributes after a bare ``import loopline``.
_SUBMODULES = ("data", "models", "monitoring", "pipelines", "registry", "serving")
# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "Client": "loopline.client.client",
    "LooplineError": "loopline.errors",
    "autolog": "loopline.models.autologging",
    "log_model": "loopline.models.log",
    "pipeline": "loopline.pipelines",
    "step": "loopline.pipelines",
    "sweep": "loopline.pipelines",
    **{
        name: "loopline.tracking.fluent"
        for name in __all__
        if name
        not in (
            "Client",
            "LooplineError",
            "__version__",
            "autolog",
            "log_model",
            "pipeline",
            "step",
            "sweep",
        )
        and name not in _SUBMODULES
    },
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"loopline.{name}")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Pipelines of cached Python steps, validation gates, triggers and sweeps.

``@loopline.step`` and ``@loopline.pipeline`` turn plain functions into a DAG (from
the data passed between steps) that runs inline, on local processes or on Ray, with
every step's outputs stored content-addressed and cached by code, params, inputs and
environment. Gates (:func:`validate_data`, :func:`validate_model`) stop a run with a
report; triggers start runs on a schedule, on new data or on alerts;
:func:`sweep` searches hyperparameters with Optuna.

Everything loads lazily: ``import loopline.pipelines`` imports no SQLAlchemy.

>>> import loopline.pipelines
>>> loopline.pipelines.step.__module__
'loopline.pipelines.core'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.pipelines._errors import (
        ApprovalRequiredError,
        GateFailedError,
        PipelineDefinitionError,
        PipelineFailedError,
        StepTimeoutError,
    )
    from loopline.pipelines.core import Pipeline, Step, pipeline, step
    from loopline.pipelines.gates import check_data, check_model, validate_data, validate_model
    from loopline.pipelines.loader import load_pipeline
    from loopline.pipelines.runner import PipelineRun
    from loopline.pipelines.sweeps import SweepResult, sweep

__all__ = [
    "ApprovalRequiredError",
    "GateFailedError",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineFailedError",
    "PipelineRun",
    "Step",
    "StepTimeoutError",
    "SweepResult",
    "check_data",
    "check_model",
    "load_pipeline",
    "pipeline",
    "step",
    "sweep",
    "validate_data",
    "validate_model",
]

_LAZY = {
    "ApprovalRequiredError": "loopline.pipelines._errors",
    "GateFailedError": "loopline.pipelines._errors",
    "PipelineDefinitionError": "loopline.pipelines._errors",
    "PipelineFailedError": "loopline.pipelines._errors",
    "StepTimeoutError": "loopline.pipelines._errors",
    "Pipeline": "loopline.pipelines.core",
    "Step": "loopline.pipelines.core",
    "pipeline": "loopline.pipelines.core",
    "step": "loopline.pipelines.core",
    "check_data": "loopline.pipelines.gates",
    "check_model": "loopline.pipelines.gates",
    "validate_data": "loopline.pipelines.gates",
    "validate_model": "loopline.pipelines.gates",
    "load_pipeline": "loopline.pipelines.loader",
    "PipelineRun": "loopline.pipelines.runner",
    "SweepResult": "loopline.pipelines.sweeps",
    "sweep": "loopline.pipelines.sweeps",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

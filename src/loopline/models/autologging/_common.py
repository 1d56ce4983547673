"""What autologging does around a training call: the run, params, metrics, model, dataset."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.models.autologging._patch import warn_failure

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "CONFIG",
    "AutologConfig",
    "dataset_ref",
    "log_dataset",
    "log_iterations",
    "log_model_safely",
    "log_params_safely",
    "run_scope",
]

DATASET_ATTR = "loopline.dataset"


@dataclass(slots=True)
class AutologConfig:
    log_models: bool = True
    log_datasets: bool = True
    log_input_examples: bool = True
    model_name: str = "model"


CONFIG = AutologConfig()


@contextlib.contextmanager
def run_scope() -> Iterator[str]:
    """The active run's id; a run is started (and ended after) when none is active."""
    from loopline.tracking.fluent import active_run, end_run, start_run

    run = active_run()
    if run is not None:
        yield run.info.run_id
        return
    started = start_run()
    try:
        yield started.info.run_id
    except BaseException:
        end_run("FAILED")
        raise
    end_run()


def _param_text(value: Any) -> str:
    from loopline.tracking.service import LIMITS

    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= LIMITS.param_value else text[: LIMITS.param_value - 3] + "..."


def log_params_safely(run_id: str, params: Mapping[str, Any]) -> None:
    from loopline.tracking.fluent import log_param

    for key, value in params.items():
        try:
            log_param(str(key), _param_text(value), run_id=run_id)
        except Exception as exc:
            warn_failure(f"param {key!r}", exc)


def log_metrics_safely(run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    from loopline.tracking.fluent import log_metric

    ts = int(time.time() * 1000)
    for key, value in metrics.items():
        try:
            log_metric(key, float(value), step, timestamp=ts, run_id=run_id)
        except Exception as exc:
            warn_failure(f"metric {key!r}", exc)


def log_iterations(run_id: str, history: Mapping[str, Mapping[str, Any]]) -> None:
    """Per-iteration evaluation results ``{data_name: {metric: [values]}}`` as metric steps."""
    from loopline.tracking.fluent import log_metric

    ts = int(time.time() * 1000)
    for data_name, metrics in history.items():
        for metric, values in metrics.items():
            key = f"{data_name}-{metric}"
            try:
                for step, value in enumerate(values):
                    log_metric(key, float(value), step, timestamp=ts, run_id=run_id)
            except Exception as exc:
                warn_failure(f"metric {key!r}", exc)


def dataset_ref(data: Any) -> str | None:
    """The dataset version a DataFrame came from, when ``loopline.data`` marked it."""
    attrs = getattr(data, "attrs", None)
    if not isinstance(attrs, dict):
        return None
    value = attrs.get(DATASET_ATTR)
    if value is None:
        return None
    ref = getattr(value, "ref", value)
    return ref if isinstance(ref, str) else None


def log_dataset(run_id: str, data: Any) -> None:
    """Record that the run trained on the dataset version ``data`` came from, if known."""
    ref = dataset_ref(data)
    if ref is None or not CONFIG.log_datasets:
        return
    try:
        from loopline.data import api as data_api

        data_api.log_input(ref, "training", run_id=run_id)
    except Exception as exc:
        warn_failure(f"dataset {ref}", exc)


def example_of(data: Any, rows: int = 5) -> Any:
    if data is None or not CONFIG.log_input_examples:
        return None
    try:
        head = data.head(rows) if hasattr(data, "head") else data[:rows]
    except Exception:
        return None
    return head


def log_model_safely(model: Any, example: Any) -> None:
    if not CONFIG.log_models:
        return
    from loopline.models.log import log_model

    try:
        log_model(model, CONFIG.model_name, input_example=example)
    except Exception as exc:
        warn_failure("the model", exc)

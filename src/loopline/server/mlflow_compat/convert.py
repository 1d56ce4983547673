"""loopline entities ⇄ MLflow's JSON.

MLflow's wire form is the JSON mapping of its protobuf messages: ids are strings,
maps are lists of ``{key, value}``, floats that JSON cannot hold travel as
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, enums by name (or number).

>>> from loopline.tracking.entities import Metric
>>> metric_json(Metric("loss", float("inf"), 5, 1))
{'key': 'loss', 'value': 'Infinity', 'timestamp': 5, 'step': 1}
>>> view_from_wire("DELETED_ONLY"), view_from_wire(3), view_from_wire(None)
('deleted', 'all', 'active')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.tracking.entities import RunStatus, encode_float

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from loopline.tracking.entities import ArtifactFile, Experiment, Metric, Run, RunInfo

__all__ = [
    "NOTE_TAG",
    "RUN_NAME_TAG",
    "USER_TAG",
    "artifact_location",
    "artifact_uri",
    "experiment_json",
    "file_info_json",
    "files_json",
    "key_values",
    "metric_json",
    "run_info_json",
    "run_json",
    "status_from_wire",
    "view_from_wire",
]

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
NOTE_TAG = "mlflow.note.content"

# ViewType and RunStatus: MLflow's enum numbers, for clients that send numbers.
_VIEWS = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
_VIEW_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def artifact_location(experiment_id: str) -> str:
    """Where an experiment's runs keep artifacts: the server's artifact proxy."""
    return f"mlflow-artifacts:/{experiment_id}"


def artifact_uri(experiment_id: str, run_id: str) -> str:
    """A run's artifact root as MLflow clients see it (uploads go through the proxy).

    >>> artifact_uri("1", "ab" * 16)
    'mlflow-artifacts:/1/abababababababababababababababab/artifacts'
    """
    return f"{artifact_location(experiment_id)}/{run_id}/artifacts"


def key_values(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def experiment_json(exp: Experiment) -> dict[str, Any]:
    tags = dict(exp.tags)
    if exp.description and NOTE_TAG not in tags:
        tags[NOTE_TAG] = exp.description
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location or artifact_location(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": key_values(tags),
    }


def run_info_json(info: RunInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": artifact_uri(info.experiment_id, info.run_id),
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        body["end_time"] = info.end_time
    return body


def run_json(run: Run) -> dict[str, Any]:
    # loopline keeps a run's latest value per metric; its step and time live in the history.
    metrics = [
        {"key": k, "value": encode_float(v), "timestamp": 0, "step": 0}
        for k, v in run.data.metrics.items()
    ]
    return {
        "info": run_info_json(run.info),
        "data": {
            "metrics": metrics,
            "params": key_values(run.data.params),
            "tags": key_values(run.data.tags),
        },
    }


def metric_json(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": encode_float(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def file_info_json(path: str, entry: ArtifactFile) -> dict[str, Any]:
    body: dict[str, Any] = {"path": path, "is_dir": entry.is_dir}
    if entry.size is not None:
        body["file_size"] = entry.size
    return body


def files_json(entries: Iterable[ArtifactFile], *, basename: bool) -> list[dict[str, Any]]:
    """File infos with run-relative paths, or base names (the artifact proxy's form)."""
    return [file_info_json(e.path.rpartition("/")[2] if basename else e.path, e) for e in entries]


def view_from_wire(value: str | int | None) -> str:
    """MLflow's ViewType (name or number) as a loopline view."""
    if value is None or value == "":
        return "active"
    name = _VIEW_NUMBERS.get(value, "") if isinstance(value, int) else value.upper()
    if name not in _VIEWS:
        raise InvalidArgumentError(
            f"invalid view type {value!r}", hint="use ACTIVE_ONLY, DELETED_ONLY or ALL"
        )
    return _VIEWS[name]


def status_from_wire(value: str | int) -> str:
    """MLflow's RunStatus (name or number) as a loopline status.

    >>> status_from_wire("FINISHED"), status_from_wire(4)
    ('FINISHED', 'FAILED')
    """
    name = _STATUS_NUMBERS.get(value, "") if isinstance(value, int) else value.upper()
    try:
        return RunStatus(name).value
    except ValueError:
        raise InvalidArgumentError(
            f"invalid run status {value!r}",
            hint="use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED",
        ) from None

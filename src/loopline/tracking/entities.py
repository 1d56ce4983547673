"""Tracking entities: plain slotted dataclasses with a JSON-able wire form.

Their shape follows MLflow's (``run.info.run_id``, ``run.data.metrics``), so code
written against MLflow reads naturally.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ArtifactFile",
    "Experiment",
    "Metric",
    "NewRun",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunUpdate",
    "RunWrites",
    "decode_float",
    "encode_float",
]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


def encode_float(value: float) -> float | str:
    """JSON has no NaN or infinity: send them as MLflow does, as strings.

    >>> encode_float(float("nan")), encode_float(float("-inf")), encode_float(1.5)
    ('NaN', '-Infinity', 1.5)
    """
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: float | int | str | None) -> float:
    """The inverse of :func:`encode_float`; ``None`` (a stored NaN) reads as NaN.

    >>> decode_float("Infinity"), decode_float(None)
    (inf, nan)
    """
    if value is None:
        return math.nan
    return float(value)


@dataclass(slots=True)
class Experiment:
    experiment_id: str
    name: str
    project: str = "default"
    description: str = ""
    artifact_location: str = ""
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int = 0
    last_update_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(**data)


@dataclass(slots=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": encode_float(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        return cls(data["key"], decode_float(data["value"]), data["timestamp"], data["step"])


@dataclass(slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    user_id: str
    lifecycle_stage: str = "active"
    artifact_uri: str = ""
    parent_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: encode_float(v) for k, v in self.metrics.items()},
            "params": self.params,
            "tags": self.tags,
        }


@dataclass(slots=True)
class Run:
    info: RunInfo
    data: RunData

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        raw = data["data"]
        return cls(
            RunInfo(**data["info"]),
            RunData(
                {k: decode_float(v) for k, v in raw["metrics"].items()},
                dict(raw["params"]),
                dict(raw["tags"]),
            ),
        )


@dataclass(slots=True)
class ArtifactFile:
    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class NewRun:
    run_id: str
    experiment_id: str
    run_name: str
    start_time: int
    user_id: str
    parent_run_id: str | None = None
    status: str = RunStatus.RUNNING


@dataclass(slots=True)
class RunUpdate:
    run_id: str
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


# A metric point on the write path: (run_id, key, value, timestamp, step).
MetricRow = tuple[str, str, float, int, int]
# A param or tag on the write path: (run_id, key, value).
KeyValueRow = tuple[str, str, str]


@dataclass(slots=True)
class RunWrites:
    """One batch of buffered writes, applied in a single transaction.

    Order of application: new runs, params, tags (then deleted tags), metrics,
    updates. ``batch_id`` makes the write idempotent: a batch applied once is
    skipped when a retry brings it again.
    """

    batch_id: str
    new_runs: list[NewRun] = field(default_factory=list)
    params: list[KeyValueRow] = field(default_factory=list)
    tags: list[KeyValueRow] = field(default_factory=list)
    deleted_tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    updates: list[RunUpdate] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.new_runs)
            + len(self.params)
            + len(self.tags)
            + len(self.deleted_tags)
            + len(self.metrics)
            + len(self.updates)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "new_runs": [asdict(r) for r in self.new_runs],
            "params": self.params,
            "tags": self.tags,
            "deleted_tags": self.deleted_tags,
            "metrics": [(r, k, encode_float(v), t, s) for r, k, v, t, s in self.metrics],
            "updates": [asdict(u) for u in self.updates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunWrites:
        return cls(
            batch_id=str(data["batch_id"]),
            new_runs=[NewRun(**r) for r in data.get("new_runs", ())],
            params=[(str(r), str(k), str(v)) for r, k, v in data.get("params", ())],
            tags=[(str(r), str(k), str(v)) for r, k, v in data.get("tags", ())],
            deleted_tags=[(str(r), str(k)) for r, k in data.get("deleted_tags", ())],
            metrics=[
                (str(r), str(k), decode_float(v), int(t), int(s))
                for r, k, v, t, s in data.get("metrics", ())
            ],
            updates=[RunUpdate(**u) for u in data.get("updates", ())],
        )

"""Registry entities: plain slotted dataclasses with a JSON-able wire form.

Every entity has ``to_dict()`` and ``from_dict()``, so the HTTP client rebuilds
exactly what the embedded service returns.

>>> v = ModelVersion(name="churn", version=3, version_id=7, aliases=["champion"])
>>> v.ref, v.uri
('churn@3', 'models:/churn/3')
>>> ModelVersion.from_dict(v.to_dict()) == v
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

__all__ = [
    "Alias",
    "AliasChange",
    "ComparisonRow",
    "DatasetUse",
    "LoggedModel",
    "ModelFile",
    "ModelFiles",
    "ModelVersion",
    "PredictionComparison",
    "RegisteredModel",
    "Review",
    "ReviewStatus",
    "VersionComparison",
    "VersionLineage",
]


class ReviewStatus(StrEnum):
    """Where a version stands in review; ``none`` when its model needs no approval."""

    NONE = "none"
    PENDING = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class _Wire:
    """``to_dict``/``from_dict`` for flat dataclasses (nested ones override ``_nested``)."""

    __slots__ = ()
    _nested: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in data.items() if k in names}
        for key, kind in cls._nested.items():
            raw = values.get(key)
            if isinstance(raw, list):
                values[key] = [kind.from_dict(item) for item in raw]
            elif isinstance(raw, dict):
                values[key] = kind.from_dict(raw)
        return cls(**values)


@dataclass(slots=True)
class RegisteredModel(_Wire):
    """A named model; ``aliases`` maps each alias to the version number it points at."""

    name: str
    description: str = ""
    require_approval: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    created_at: int = 0
    updated_at: int = 0
    project: str = "default"


@dataclass(slots=True)
class ModelVersion(_Wire):
    """One immutable version; its files are a manifest under ``model_versions/<version_id>``."""

    name: str
    version: int
    version_id: int = 0
    source: str = ""
    run_id: str | None = None
    logged_model_id: str | None = None
    flavor: str = ""
    signature: dict[str, Any] | None = None
    status: str = "READY"
    review_status: str = ReviewStatus.NONE.value
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    created_at: int = 0
    created_by: str = ""
    updated_at: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def root(self) -> str:
        """The artifact root holding this version's files."""
        return f"model_versions/{self.version_id}"


@dataclass(slots=True)
class Alias(_Wire):
    model: str
    alias: str
    version: int
    protected: bool = False
    updated_at: int = 0
    updated_by: str = ""


@dataclass(slots=True)
class AliasChange(_Wire):
    """One move of an alias: ``from_version`` None when it was created, ``to_version``
    None when it was deleted."""

    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str = ""
    reason: str = ""
    created_at: int = 0


@dataclass(slots=True)
class Review(_Wire):
    """A review request or decision (``requested``, ``approved``, ``rejected``)."""

    model: str
    version: int
    decision: str
    reviewer: str = ""
    comment: str = ""
    created_at: int = 0


@dataclass(slots=True)
class ModelFile(_Wire):
    path: str
    digest: str
    size: int


@dataclass(slots=True)
class LoggedModel(_Wire):
    """MLflow 3's logged model (``models:/m-<id>``): files under ``logged_models/<id>``."""

    model_id: str
    experiment_id: str
    name: str
    source_run_id: str | None = None
    status: str = "PENDING"
    model_type: str = ""
    flavor: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"

    @property
    def root(self) -> str:
        return f"logged_models/{self.model_id}"


@dataclass(slots=True)
class DatasetUse(_Wire):
    """A dataset version upstream of a model version, and how it got there."""

    ref: str
    digest: str = ""
    context: str = ""
    via: str = "run"
    """``run`` (read by the version's run), ``pipeline`` (by another step of its pipeline
    run) or ``direct`` (an explicit edge)."""


@dataclass(slots=True)
class VersionLineage(_Wire):
    """version → run → dataset versions (→ pipeline runs), and what the version feeds."""

    model: str
    version: int
    source: str = ""
    run_id: str | None = None
    run_name: str | None = None
    experiment_id: str | None = None
    run_status: str | None = None
    logged_model_id: str | None = None
    datasets: list[DatasetUse] = field(default_factory=list)
    pipeline_runs: list[str] = field(default_factory=list)
    downstream: list[dict[str, str]] = field(default_factory=list)

    _nested: ClassVar[dict[str, Any]] = {"datasets": DatasetUse}


@dataclass(slots=True)
class ComparisonRow(_Wire):
    section: str  # "params" or "metrics"
    key: str
    a: Any
    b: Any

    @property
    def differs(self) -> bool:
        if isinstance(self.a, float) and isinstance(self.b, float) and self.a != self.a:
            return self.b == self.b  # NaN on both sides is no difference
        return bool(self.a != self.b)


@dataclass(slots=True)
class PredictionComparison(_Wire):
    """Two versions' predictions on one dataset version.

    ``agreement`` (classifiers: the share of rows both predict alike) or
    ``mean_abs_diff`` (regressors); with a ``target`` column, each version's
    ``accuracy``/``f1`` or ``mae``/``rmse`` in ``metrics_a`` and ``metrics_b``.
    """

    dataset: str
    rows: int
    task: str  # "classification" or "regression"
    target: str | None = None
    agreement: float | None = None
    mean_abs_diff: float | None = None
    metrics_a: dict[str, float] = field(default_factory=dict)
    metrics_b: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class VersionComparison(_Wire):
    a: ModelVersion
    b: ModelVersion
    rows: list[ComparisonRow] = field(default_factory=list)
    predictions: PredictionComparison | None = None

    _nested: ClassVar[dict[str, Any]] = {
        "a": ModelVersion,
        "b": ModelVersion,
        "rows": ComparisonRow,
    }

    def to_dict(self) -> dict[str, Any]:
        from loopline.tracking.entities import encode_float

        def wire(value: Any) -> Any:
            return encode_float(value) if isinstance(value, float) else value

        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "rows": [
                {"section": r.section, "key": r.key, "a": wire(r.a), "b": wire(r.b)}
                for r in self.rows
            ],
            "predictions": None if self.predictions is None else self.predictions.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        from loopline.tracking.entities import decode_float

        def unwire(section: str, value: Any) -> Any:
            if section == "metrics" and value is not None:
                return decode_float(value)
            return value

        return cls(
            a=ModelVersion.from_dict(data["a"]),
            b=ModelVersion.from_dict(data["b"]),
            rows=[
                ComparisonRow(
                    r["section"],
                    r["key"],
                    unwire(r["section"], r["a"]),
                    unwire(r["section"], r["b"]),
                )
                for r in data.get("rows", [])
            ],
            predictions=None
            if data.get("predictions") is None
            else PredictionComparison.from_dict(data["predictions"]),
        )


@dataclass(slots=True)
class ModelFiles(_Wire):
    """The files behind a model URI, with the URI pinned (an alias resolved to its version)."""

    uri: str
    label: str
    files: list[ModelFile] = field(default_factory=list)

    _nested: ClassVar[dict[str, Any]] = {"files": ModelFile}

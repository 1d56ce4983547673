"""Request bodies of MLflow's POST endpoints (the JSON form of its protobuf messages).

Lenient where the protobuf JSON mapping is: int64 fields may come as strings,
enums as names or numbers, ids as strings or numbers, floats as ``"NaN"`` or
``"Infinity"``; fields a newer client adds are ignored.

>>> LogBatch.model_validate({"run_id": "r", "metrics": [
...     {"key": "a", "value": "NaN", "timestamp": "5"}]}).metrics[0]
MetricIn(key='a', value=nan, timestamp=5, step=0)
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loopline.errors import InvalidArgumentError

__all__ = [
    "CreateExperiment",
    "CreateRun",
    "DeleteExperimentTag",
    "DeleteTag",
    "ExperimentRef",
    "KeyValue",
    "LogBatch",
    "LogMetric",
    "LogParam",
    "MetricIn",
    "RunRef",
    "SearchExperiments",
    "SearchRuns",
    "SetExperimentTag",
    "SetTag",
    "UpdateExperiment",
    "UpdateRun",
]


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_id_text)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Enum = str | int


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(Message):
    key: str
    value: str = ""


class MetricIn(Message):
    key: str
    value: float
    timestamp: Int64 | None = None
    step: Int64 = 0


class RunRef(Message):
    """A run named by ``run_id`` (or ``run_uuid``, its MLflow 1.x spelling)."""

    run_id: str | None = None
    run_uuid: str | None = None

    def target(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise InvalidArgumentError("missing value for required parameter 'run_id'")
        return run_id


class ExperimentRef(Message):
    experiment_id: Id


class CreateExperiment(Message):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateExperiment(ExperimentRef):
    new_name: str


class SetExperimentTag(ExperimentRef):
    key: str
    value: str = ""


class DeleteExperimentTag(ExperimentRef):
    key: str


class SearchExperiments(Message):
    max_results: int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: Enum | None = None


class CreateRun(Message):
    experiment_id: Id = "0"
    user_id: str | None = None
    start_time: Int64 | None = None
    run_name: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: Enum | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef):
    key: str
    value: str = ""


class SetTag(RunRef):
    key: str
    value: str = ""


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class SearchRuns(Message):
    experiment_ids: list[Id] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: Enum | None = None
    max_results: int = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None

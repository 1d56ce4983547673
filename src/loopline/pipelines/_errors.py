"""The errors pipelines raise; each names the step (and its source line) it is about."""

from __future__ import annotations

from loopline.errors import CheckFailedError, InvalidArgumentError, LooplineError

__all__ = [
    "ApprovalRequiredError",
    "GateFailedError",
    "PipelineDefinitionError",
    "PipelineFailedError",
    "StepTimeoutError",
]


class PipelineDefinitionError(InvalidArgumentError):
    """A pipeline or step that cannot run as written (found before anything runs)."""


class PipelineFailedError(LooplineError):
    """A step failed: the run is failed, with each failed step's error and traceback."""

    default_code = "PIPELINE_FAILED"

    def __init__(self, message: str, *, hint: str | None = None, run_id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id


class GateFailedError(CheckFailedError):
    """A validation gate did not pass; ``report`` holds every check and its outcome."""

    def __init__(self, message: str, *, report: list[dict[str, object]] | None = None) -> None:
        super().__init__(message, hint="see the report above; the run stopped at the gate")
        self.report = list(report or [])


class ApprovalRequiredError(CheckFailedError):
    """A passed gate could not move a protected alias: a reviewer must approve first."""


class StepTimeoutError(LooplineError):
    """A step ran longer than its ``timeout``."""

    default_code = "DEADLINE_EXCEEDED"

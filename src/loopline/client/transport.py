"""The transport interface: how the SDK reaches a store.

One client, several transports: :class:`~loopline.tracking.service.TrackingService`
talks to the embedded (or a database-URL) store directly, and
:class:`~loopline.client.http.HttpTransport` talks to a ``loopline server``. The
server itself answers with a ``TrackingService``, so both paths run the same code.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.events import Event
    from loopline.tracking.entities import ArtifactFile, Experiment, Metric, Run, RunWrites

__all__ = ["SearchPage", "Transport"]

SearchPage = tuple[list["Run"], str | None]


class Transport(abc.ABC):
    """Operations the SDK needs; every implementation passes the same contract tests."""

    user: str
    project: str

    # -- experiments ---------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> str: ...

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abc.abstractmethod
    def list_experiments(
        self, *, view: str = "active", name_like: str | None = None
    ) -> list[Experiment]: ...

    @abc.abstractmethod
    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        """Set a tag (``value=None`` deletes it)."""

    # -- runs ----------------------------------------------------------------------
    @abc.abstractmethod
    def write(self, batch: RunWrites) -> None:
        """Apply a batch of buffered writes atomically and idempotently."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "active",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> SearchPage: ...

    @abc.abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    # -- artifacts -----------------------------------------------------------------
    @abc.abstractmethod
    def put_artifact(self, run_id: str, path: str, source: Path | bytes) -> None:
        """Store a file (or bytes) as ``path`` in the run's artifacts."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactFile]: ...

    @abc.abstractmethod
    def read_artifact(self, run_id: str, path: str) -> bytes: ...

    @abc.abstractmethod
    def download_artifacts(self, run_id: str, path: str, dest: Path) -> Path:
        """Materialise a file or folder of artifacts under ``dest``; returns the local path."""

    # -- events --------------------------------------------------------------------
    @abc.abstractmethod
    def events(
        self, *, after_id: int = 0, kinds: list[str] | None = None, limit: int = 1000
    ) -> list[Event]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        """Where this transport points, for messages."""
        return {"kind": type(self).__name__}

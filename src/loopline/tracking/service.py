"""The tracking service: validation and blobs on top of the SQL tracking store.

It is the embedded SDK's transport and what the server answers with, so local and
remote use run the same checks.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.client.transport import SearchPage, Transport
from loopline.errors import InvalidArgumentError, LimitExceededError, NotFoundError
from loopline.events import Event, read_events
from loopline.store.digest import Digest
from loopline.store.paths import safe_relpath
from loopline.tracking.entities import (
    ArtifactFile,
    Experiment,
    Metric,
    Run,
    RunStatus,
    RunWrites,
)
from loopline.tracking.store import TrackingStore

if TYPE_CHECKING:
    import pandas as pd

    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["LIMITS", "TrackingService"]


class LIMITS:
    """Sizes refused with a 4xx (MLflow's where MLflow has one)."""

    key = 250
    param_value = 6000
    tag_value = 8000
    experiment_name = 500
    run_name = 250
    description = 100_000
    batch_metrics = 200_000
    batch_params = 10_000
    batch_tags = 10_000
    search_results = 50_000


_STATUSES = tuple(s.value for s in RunStatus)
_CONTROL = re.compile(r"[\x00-\x1f]")


def check_key(key: object, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"{what} name must be a non-empty string, got {key!r}")
    if len(key) > LIMITS.key:
        raise LimitExceededError(
            f"{what} name {key[:40]!r}... is {len(key)} characters; the limit is {LIMITS.key}",
        )
    if _CONTROL.search(key):
        raise InvalidArgumentError(f"{what} name {key!r} contains control characters")
    return key


def check_value(value: str, limit: int, what: str, key: str) -> None:
    if len(value) > limit:
        raise LimitExceededError(
            f"{what} {key!r} has a value of {len(value)} characters; the limit is {limit}",
            hint="store long text as an artifact with log_text()",
        )


def _check_description(description: str) -> None:
    if len(description) > LIMITS.description:
        raise LimitExceededError(
            f"the description is {len(description)} characters; the limit is {LIMITS.description}",
            hint="store long text as an artifact",
        )


def validate_batch(batch: RunWrites) -> None:
    """Refuse a batch over the limits before it reaches the database."""
    for count, limit, what in (
        (len(batch.metrics), LIMITS.batch_metrics, "metric points"),
        (len(batch.params), LIMITS.batch_params, "params"),
        (len(batch.tags), LIMITS.batch_tags, "tags"),
    ):
        if count > limit:
            raise LimitExceededError(
                f"a batch carries {count} {what}; the limit is {limit} per batch",
                hint="split the batch",
            )
    for key in {m[1] for m in batch.metrics}:
        check_key(key, "metric")
    for _, key, value in batch.params:
        check_key(key, "param")
        check_value(value, LIMITS.param_value, "param", key)
    for _, key, value in batch.tags:
        check_key(key, "tag")
        check_value(value, LIMITS.tag_value, "tag", key)
    for _, key in batch.deleted_tags:
        check_key(key, "tag")
    for name in [n.run_name for n in batch.new_runs] + [u.run_name for u in batch.updates]:
        if name is not None and len(name) > LIMITS.run_name:
            raise LimitExceededError(
                f"run name is {len(name)} characters; the limit is {LIMITS.run_name}"
            )
    for status in [n.status for n in batch.new_runs] + [u.status for u in batch.updates]:
        if status is not None and status not in _STATUSES:
            raise InvalidArgumentError(
                f"unknown run status {status!r}", hint=f"use one of {', '.join(_STATUSES)}"
            )


class TrackingService(Transport):
    """The embedded transport: a metadata database plus a blob store.

    >>> import tempfile
    >>> from loopline.store.blobs import open_blob_store
    >>> from loopline.store.metadata import Database
    >>> home = tempfile.mkdtemp()
    >>> svc = TrackingService(Database(f"sqlite:///{home}/m.db"), open_blob_store(home + "/blobs"))
    >>> svc.get_experiment("0").name
    'Default'
    """

    def __init__(
        self, db: Database, blobs: BlobStore, *, user: str = "unknown", project: str = "default"
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.store = TrackingStore(db)
        self.user = user
        self.project = project

    def for_user(self, user: str, project: str | None = None) -> TrackingService:
        """The same service acting for another caller (the server does this per request)."""
        clone = copy.copy(self)
        clone.user = user
        clone.project = project or self.project
        return clone

    def describe(self) -> dict[str, str]:
        return {"kind": "embedded", "metadata": self.db.safe_url, "blobs": self.blobs.uri}

    def close(self) -> None:
        self.db.close()
        self.blobs.close()

    # -- experiments ---------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> str:
        name = (name or "").strip()
        if not name:
            raise InvalidArgumentError("experiment name must not be empty")
        if len(name) > LIMITS.experiment_name:
            raise LimitExceededError(
                f"experiment name is {len(name)} characters; the limit is {LIMITS.experiment_name}"
            )
        _check_description(description)
        for key, value in (tags or {}).items():
            check_key(key, "tag")
            check_value(value, LIMITS.tag_value, "tag", key)
        return self.store.create_experiment(
            name,
            project=self.project,
            description=description,
            tags_=dict(tags or {}),
            artifact_location=artifact_location,
            actor=self.user,
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name, project=self.project)

    def list_experiments(
        self, *, view: str = "active", name_like: str | None = None
    ) -> list[Experiment]:
        return self.store.list_experiments(view=view, name_like=name_like, project=self.project)

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        if name is not None and not name.strip():
            raise InvalidArgumentError("experiment name must not be empty")
        if name is not None and len(name) > LIMITS.experiment_name:
            raise LimitExceededError(
                f"experiment name is {len(name)} characters; the limit is {LIMITS.experiment_name}"
            )
        if description is not None:
            _check_description(description)
        self.store.update_experiment(
            str(experiment_id), name=name, description=description, actor=self.user
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(str(experiment_id), "deleted", actor=self.user)

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(str(experiment_id), "active", actor=self.user)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        check_key(key, "tag")
        if value is not None:
            check_value(value, LIMITS.tag_value, "tag", key)
        self.store.set_experiment_tag(str(experiment_id), key, value)

    # -- runs ----------------------------------------------------------------------
    def write(self, batch: RunWrites) -> None:
        validate_batch(batch)
        self.store.apply(batch, actor=self.user)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def search_runs(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "active",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> SearchPage:
        from loopline.tracking.search import decode_page_token, encode_page_token

        if not 0 < max_results <= LIMITS.search_results:
            raise LimitExceededError(
                f"max_results must be between 1 and {LIMITS.search_results}, got {max_results}"
            )
        offset = decode_page_token(page_token)
        query = _search_query(
            experiment_ids, filter_string, order_by, view, max_results + 1, offset
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            more = len(rows) > max_results
            found = self.store.hydrate(conn, rows[:max_results])
        return found, encode_page_token(offset + max_results) if more else None

    def search_frame(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "active",
        max_results: int = 100_000,
    ) -> pd.DataFrame:
        """The matches of :meth:`search_runs` as one DataFrame, built without Run objects.

        The SDK's ``search_runs`` takes this path on the embedded store.
        """
        from loopline.tracking.frame import rows_to_frame

        if max_results < 1:
            raise LimitExceededError(f"max_results must be at least 1, got {max_results}")
        query = _search_query(experiment_ids, filter_string, order_by, view, max_results, 0)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            values = self.store.run_data(conn, [row[0] for row in rows]) if rows else ({}, {}, {})
        return rows_to_frame(rows, *values)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.metric_history(run_id, key)

    def delete_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, "deleted", actor=self.user)

    def restore_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, "active", actor=self.user)

    # -- artifacts -----------------------------------------------------------------
    def put_artifact(self, run_id: str, path: str, source: Path | bytes) -> None:
        path = safe_relpath(path)
        self.store.require_active_run(run_id)
        if isinstance(source, bytes):
            digest, size = self.blobs.put_bytes(source), len(source)
        else:
            digest = self.blobs.put_file(Path(source))
            size = self.blobs.size(digest)
        self.store.put_artifact(f"runs/{run_id}", path, str(digest), size)

    def put_artifact_digest(self, run_id: str, path: str, digest: Digest) -> None:
        """Record an artifact whose blob is already stored (uploads that dedupe)."""
        path = safe_relpath(path)
        self.store.require_active_run(run_id)
        self.store.put_artifact(f"runs/{run_id}", path, str(digest), self.blobs.size(digest))

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactFile]:
        self.store.get_run(run_id)
        return self.store.list_artifacts(f"runs/{run_id}", safe_relpath(path, allow_empty=True))

    def artifact_digest(self, run_id: str, path: str) -> tuple[Digest, int]:
        entry = self.store.artifact_entry(f"runs/{run_id}", safe_relpath(path))
        if entry is None:
            raise NotFoundError(f"artifact {path!r} does not exist in run {run_id}")
        return Digest.parse(entry[0]), entry[1]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        digest, _ = self.artifact_digest(run_id, path)
        return self.blobs.get_bytes(digest)

    def download_artifacts(self, run_id: str, path: str, dest: Path) -> Path:
        path = safe_relpath(path, allow_empty=True)
        files = self.store.artifact_files(f"runs/{run_id}", path)
        if not files:
            self.store.get_run(run_id)
            raise NotFoundError(f"artifact {path!r} does not exist in run {run_id}")
        # As MLflow does: the artifact keeps its relative path under ``dest``.
        dest = Path(dest)
        for rel, digest, _ in files:
            self.blobs.get_file(Digest.parse(digest), dest / rel)
        return dest / path if path else dest

    # -- events --------------------------------------------------------------------
    def events(
        self, *, after_id: int = 0, kinds: list[str] | None = None, limit: int = 1000
    ) -> list[Event]:
        return read_events(self.db, after_id=after_id, kinds=kinds, limit=limit)


def _search_query(
    experiment_ids: list[str],
    filter_string: str | None,
    order_by: list[str] | None,
    view: str,
    limit: int,
    offset: int,
) -> Any:
    from loopline.tracking.search import build_search_query

    ids: list[int] = []
    for exp in experiment_ids:
        try:
            ids.append(int(exp))
        except (TypeError, ValueError):
            raise NotFoundError(f"experiment {exp!r} does not exist") from None
    return build_search_query(
        experiment_ids=ids,
        filter=filter_string,
        order_by=order_by,
        view=view,  # type: ignore[arg-type]
        limit=limit,
        offset=offset,
    )

"""SQL for experiments, runs, metrics and artifact manifests.

One class, ``TrackingStore``, over a :class:`~loopline.store.metadata.Database`;
it speaks SQLAlchemy Core, identically on SQLite and PostgreSQL. Validation of
user input happens in :mod:`loopline.tracking.service`; this layer enforces what
needs the database to enforce (existence, param immutability, idempotency).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.store.metadata import Database
from loopline.store.metadata.schema import (
    artifacts,
    experiment_tags,
    experiments,
    latest_metrics,
    metrics,
    params,
    projects,
    runs,
    tags,
    write_batches,
)
from loopline.tracking.entities import (
    ArtifactFile,
    Experiment,
    Metric,
    NewRun,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunWrites,
)
from loopline.events import emit

__all__ = ["ParamConflictError", "TrackingStore", "now_ms"]

_CHUNK = 500  # rows per IN (...) list: well under SQLite's bound-parameter limit


def now_ms() -> int:
    return int(time.time() * 1000)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ParamConflictError(InvalidArgumentError):
    """A param logged again with a different value; ``conflicts`` lists (run_id, key)."""

    def __init__(self, conflicts: list[tuple[str, str, str, str]]) -> None:
        run_id, key, old, new = conflicts[0]
        more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
        super().__init__(
            f"param {key!r} of run {run_id} is already {old!r}; refusing to change it to "
            f"{new!r}{more}",
            hint="params are immutable once logged: use a new key or a new run",
        )
        self.conflicts = [(r, k) for r, k, _, _ in conflicts]


class TrackingStore:
    """Experiments, runs, metrics, params, tags and artifact manifests in SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._project_ids: dict[str, int] = {}

    # -- projects ------------------------------------------------------------------
    def project_id(self, conn: Connection, name: str) -> int:
        if name not in self._project_ids:
            pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
            if pid is None:
                raise NotFoundError(
                    f"project {name!r} does not exist",
                    hint="the 'default' project always exists; create others first",
                )
            self._project_ids[name] = pid
        return self._project_ids[name]

    # -- experiments -----------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        project: str,
        description: str,
        tags_: dict[str, str],
        artifact_location: str | None,
        actor: str,
    ) -> str:
        now = now_ms()
        with self.db.write() as conn:
            pid = self.project_id(conn, project)
            exists = conn.execute(
                sa.select(experiments.c.id, experiments.c.lifecycle_stage).where(
                    experiments.c.project_id == pid, experiments.c.name == name
                )
            ).first()
            if exists is not None:
                where = (
                    " (deleted: restore it or choose another name)" if exists[1] != "active" else ""
                )
                raise AlreadyExistsError(
                    f"experiment {name!r} already exists with id {exists[0]}{where}",
                    hint="use set_experiment() to reuse it",
                )
            exp_id = conn.execute(
                sa.insert(experiments)
                .values(
                    project_id=pid,
                    name=name,
                    description=description,
                    artifact_location=artifact_location or "",
                    created_at=now,
                    updated_at=now,
                )
                .returning(experiments.c.id)
            ).scalar_one()
            if tags_:
                conn.execute(
                    sa.insert(experiment_tags),
                    [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags_.items()],
                )
            emit(conn, "experiment.created", "experiment", str(exp_id), actor, {"name": name}, pid)
        return str(exp_id)

    def _experiment_rows(self, conn: Connection, where: Any) -> list[Experiment]:
        rows = conn.execute(
            sa.select(experiments, projects.c.name.label("project"))
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(where)
            .order_by(experiments.c.id)
        ).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
        for chunk in _chunks(ids):
            for t in conn.execute(
                sa.select(experiment_tags).where(experiment_tags.c.experiment_id.in_(chunk))
            ):
                tag_map[t.experiment_id][t.key] = t.value
        return [
            Experiment(
                experiment_id=str(r.id),
                name=r.name,
                project=r.project,
                description=r.description,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                tags=tag_map[r.id],
                creation_time=r.created_at,
                last_update_time=r.updated_at,
            )
            for r in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp_int = _experiment_int(experiment_id)
        with self.db.read() as conn:
            found = self._experiment_rows(conn, experiments.c.id == exp_int)
        if not found:
            raise NotFoundError(
                f"experiment {experiment_id} does not exist",
                hint="list experiments with `loopline experiments list`",
            )
        return found[0]

    def get_experiment_by_name(self, name: str, *, project: str) -> Experiment | None:
        with self.db.read() as conn:
            pid = self.project_id(conn, project)
            found = self._experiment_rows(
                conn, sa.and_(experiments.c.project_id == pid, experiments.c.name == name)
            )
        return found[0] if found else None

    def list_experiments(
        self, *, view: str = "active", name_like: str | None = None, project: str | None = None
    ) -> list[Experiment]:
        clauses: list[Any] = [_view_clause(experiments.c.lifecycle_stage, view)]
        if name_like:
            clauses.append(experiments.c.name.like(name_like))
        with self.db.read() as conn:
            if project is not None:
                clauses.append(experiments.c.project_id == self.project_id(conn, project))
            return self._experiment_rows(conn, sa.and_(*clauses))

    def update_experiment(
        self, experiment_id: str, *, name: str | None, description: str | None, actor: str
    ) -> None:
        values: dict[str, Any] = {"updated_at": now_ms()}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            try:
                conn.execute(
                    sa.update(experiments)
                    .where(experiments.c.id == _experiment_int(experiment_id))
                    .values(**values)
                )
            except sa.exc.IntegrityError as exc:
                raise AlreadyExistsError(f"an experiment named {name!r} already exists") from exc

    def set_experiment_lifecycle(self, experiment_id: str, stage: str, *, actor: str) -> None:
        if experiment_id == "0" and stage == "deleted":
            raise InvalidArgumentError("the default experiment (id 0) cannot be deleted")
        now = now_ms()
        with self.db.write() as conn:
            pid = self._require_experiment(conn, experiment_id)
            exp_int = _experiment_int(experiment_id)
            conn.execute(
                sa.update(experiments)
                .where(experiments.c.id == exp_int)
                .values(
                    lifecycle_stage=stage,
                    updated_at=now,
                    deleted_at=now if stage == "deleted" else None,
                )
            )
            # Runs follow their experiment, as in MLflow.
            conn.execute(
                sa.update(runs)
                .where(runs.c.experiment_id == exp_int)
                .values(lifecycle_stage=stage, deleted_at=now if stage == "deleted" else None)
            )
            kind = "experiment.deleted" if stage == "deleted" else "experiment.restored"
            emit(conn, kind, "experiment", experiment_id, actor, {}, pid)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        exp_int = _experiment_int(experiment_id)
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            conn.execute(
                sa.delete(experiment_tags).where(
                    experiment_tags.c.experiment_id == exp_int, experiment_tags.c.key == key
                )
            )
            if value is not None:
                conn.execute(
                    sa.insert(experiment_tags).values(experiment_id=exp_int, key=key, value=value)
                )

    def _require_experiment(self, conn: Connection, experiment_id: str) -> int:
        pid = conn.execute(
            sa.select(experiments.c.project_id).where(
                experiments.c.id == _experiment_int(experiment_id)
            )
        ).scalar()
        if pid is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return int(pid)

    # -- writes --------------------------------------------------------------------
    def apply(self, batch: RunWrites, *, actor: str) -> None:
        """Apply one batch of buffered writes in a single transaction, at most once."""
        with self.db.write() as conn:
            seen = conn.execute(
                sa.select(write_batches.c.id).where(write_batches.c.id == batch.batch_id)
            ).first()
            if seen is not None:
                return
            conn.execute(sa.insert(write_batches).values(id=batch.batch_id, created_at=now_ms()))
            if batch.new_runs:
                self._insert_runs(conn, batch.new_runs)
            self._check_runs(conn, batch)
            if batch.params:
                self._insert_params(conn, batch.params)
            if batch.tags:
                self._upsert(
                    conn,
                    tags,
                    ["run_id", "key"],
                    [{"run_id": r, "key": k, "value": v} for r, k, v in batch.tags],
                )
            for run_id, key in batch.deleted_tags:
                conn.execute(sa.delete(tags).where(tags.c.run_id == run_id, tags.c.key == key))
            if batch.metrics:
                self._insert_metrics(conn, batch.metrics)
            for upd in batch.updates:
                self._update_run(conn, upd.run_id, upd.status, upd.end_time, upd.run_name, actor)

    def _insert_runs(self, conn: Connection, new_runs: list[NewRun]) -> None:
        exp_ids = sorted({_experiment_int(r.experiment_id) for r in new_runs})
        active = {
            row.id: row.lifecycle_stage
            for row in conn.execute(
                sa.select(experiments.c.id, experiments.c.lifecycle_stage).where(
                    experiments.c.id.in_(exp_ids)
                )
            )
        }
        for exp_id in exp_ids:
            if exp_id not in active:
                raise NotFoundError(f"experiment {exp_id} does not exist")
            if active[exp_id] != "active":
                raise InvalidStateError(
                    f"experiment {exp_id} is deleted; runs cannot be created in it",
                    hint="restore it with `loopline experiments restore` or use another",
                )
        existing = set(
            conn.execute(
                sa.select(runs.c.id).where(runs.c.id.in_([r.run_id for r in new_runs]))
            ).scalars()
        )
        if existing:
            raise AlreadyExistsError(f"run {sorted(existing)[0]} already exists")
        conn.execute(
            sa.insert(runs),
            [
                {
                    "id": r.run_id,
                    "experiment_id": _experiment_int(r.experiment_id),
                    "name": r.run_name,
                    "status": r.status,
                    "start_time": r.start_time,
                    "end_time": None,
                    "user": r.user_id,
                    "lifecycle_stage": "active",
                    "parent_run_id": r.parent_run_id,
                    "artifact_uri": f"runs:/{r.run_id}",
                }
                for r in new_runs
            ],
        )

    def _check_runs(self, conn: Connection, batch: RunWrites) -> None:
        """Every run a batch writes to must exist and be active."""
        wanted = {r for r, *_ in batch.params} | {r for r, *_ in batch.tags}
        wanted |= {r for r, *_ in batch.metrics} | {r for r, _ in batch.deleted_tags}
        wanted |= {u.run_id for u in batch.updates}
        wanted -= {r.run_id for r in batch.new_runs}
        if not wanted:
            return
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(wanted)):
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.lifecycle_stage).where(runs.c.id.in_(chunk))
            ).all()
            found.update((r.id, r.lifecycle_stage) for r in rows)
        for run_id in sorted(wanted):
            if run_id not in found:
                raise NotFoundError(f"run {run_id} does not exist")
            if found[run_id] != "active":
                raise InvalidStateError(
                    f"run {run_id} is deleted; restore it before logging to it",
                    hint="`loopline runs restore RUN_ID`",
                )

    def _insert_params(self, conn: Connection, rows: list[tuple[str, str, str]]) -> None:
        wanted: dict[tuple[str, str], str] = {}
        conflicts: list[tuple[str, str, str, str]] = []
        for run_id, key, value in rows:
            prior = wanted.setdefault((run_id, key), value)
            if prior != value:
                conflicts.append((run_id, key, prior, value))
        run_ids = sorted({r for r, _ in wanted})
        existing: dict[tuple[str, str], str] = {}
        for chunk in _chunks(run_ids):
            for row in conn.execute(
                sa.select(params.c.run_id, params.c.key, params.c.value).where(
                    params.c.run_id.in_(chunk)
                )
            ):
                existing[(row.run_id, row.key)] = row.value
        for (run_id, key), value in wanted.items():
            old = existing.get((run_id, key))
            if old is not None and old != value:
                conflicts.append((run_id, key, old, value))
        if conflicts:
            raise ParamConflictError(conflicts)
        fresh = [
            {"run_id": r, "key": k, "value": v}
            for (r, k), v in wanted.items()
            if (r, k) not in existing
        ]
        if fresh:
            conn.execute(sa.insert(params), fresh)

    def _insert_metrics(
        self, conn: Connection, rows: list[tuple[str, str, float, int, int]]
    ) -> None:
        # NaN is stored as NULL: SQLite cannot hold NaN and NULL is otherwise unused.
        conn.execute(
            sa.insert(metrics),
            [
                {
                    "run_id": r,
                    "key": k,
                    "value": None if v != v else v,
                    "timestamp": t,
                    "step": s,
                }
                for r, k, v, t, s in rows
            ],
        )
        latest: dict[tuple[str, str], tuple[int, int, float]] = {}
        for r, k, v, t, s in rows:
            cur = latest.get((r, k))
            if cur is None or (s, t) >= (cur[0], cur[1]):
                latest[(r, k)] = (s, t, v)
        self._upsert(
            conn,
            latest_metrics,
            ["run_id", "key"],
            [
                {
                    "run_id": r,
                    "key": k,
                    "step": s,
                    "timestamp": t,
                    "value": None if math.isnan(v) else v,
                }
                for (r, k), (s, t, v) in latest.items()
            ],
            newer_only=True,
        )

    def _upsert(
        self,
        conn: Connection,
        table: sa.Table,
        keys: list[str],
        rows: list[dict[str, Any]],
        *,
        newer_only: bool = False,
    ) -> None:
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        where = None
        if newer_only:
            where = sa.or_(
                stmt.excluded.step > table.c.step,
                sa.and_(
                    stmt.excluded.step == table.c.step,
                    stmt.excluded.timestamp >= table.c.timestamp,
                ),
            )
        conn.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_=updates, where=where), rows
        )

    def _update_run(
        self,
        conn: Connection,
        run_id: str,
        status: str | None,
        end_time: int | None,
        name: str | None,
        actor: str,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if end_time is not None:
            values["end_time"] = end_time
        if name is not None:
            values["name"] = name
        if not values:
            return
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        if status is not None and RunStatus(status).terminal:
            row = conn.execute(
                sa.select(experiments.c.project_id, runs.c.experiment_id)
                .join(experiments, experiments.c.id == runs.c.experiment_id)
                .where(runs.c.id == run_id)
            ).one()
            emit(
                conn,
                "run.finished",
                "run",
                run_id,
                actor,
                {"status": status, "experiment_id": str(row.experiment_id)},
                row.project_id,
            )

    # -- reads ---------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(
                    f"run {run_id} does not exist",
                    hint="list runs with `loopline runs list`",
                )
            return self.hydrate(conn, [row])[0]

    def hydrate(self, conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[Run]:
        """Runs with their latest metrics, params and tags, in the order of ``rows``."""
        data: dict[str, RunData] = {row.id: RunData() for row in rows}
        ids = list(data)
        for chunk in _chunks(ids):
            for run_id, key, value in conn.execute(
                sa.select(
                    latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value
                ).where(latest_metrics.c.run_id.in_(chunk))
            ):
                data[run_id].metrics[key] = math.nan if value is None else value
            for run_id, key, value in conn.execute(
                sa.select(params.c.run_id, params.c.key, params.c.value).where(
                    params.c.run_id.in_(chunk)
                )
            ):
                data[run_id].params[key] = value
            for run_id, key, value in conn.execute(
                sa.select(tags.c.run_id, tags.c.key, tags.c.value).where(tags.c.run_id.in_(chunk))
            ):
                data[run_id].tags[key] = value
        return [Run(_run_info(row), data[row.id]) for row in rows]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            result = conn.execute(
                sa.select(metrics.c.key, metrics.c.value, metrics.c.timestamp, metrics.c.step)
                .where(metrics.c.run_id == run_id, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
            )
            return [Metric(k, math.nan if v is None else v, t, s) for k, v, t, s in result]

    def metric_keys(self, run_id: str) -> list[str]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(latest_metrics.c.key)
                    .where(latest_metrics.c.run_id == run_id)
                    .order_by(latest_metrics.c.key)
                ).scalars()
            )

    def _require_run(self, conn: Connection, run_id: str) -> sa.Row[Any]:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(
                f"run {run_id} does not exist", hint="list runs with `loopline runs list`"
            )
        return row

    def set_run_lifecycle(self, run_id: str, stage: str, *, actor: str) -> None:
        now = now_ms()
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(lifecycle_stage=stage, deleted_at=now if stage == "deleted" else None)
            )
            pid = conn.execute(
                sa.select(experiments.c.project_id)
                .join(runs, runs.c.experiment_id == experiments.c.id)
                .where(runs.c.id == run_id)
            ).scalar_one()
            kind = "run.deleted" if stage == "deleted" else "run.restored"
            emit(conn, kind, "run", run_id, actor, {}, pid)

    def run_project(self, run_id: str) -> str:
        with self.db.read() as conn:
            name = conn.execute(
                sa.select(projects.c.name)
                .join(experiments, experiments.c.project_id == projects.c.id)
                .join(runs, runs.c.experiment_id == experiments.c.id)
                .where(runs.c.id == run_id)
            ).scalar()
        if name is None:
            raise NotFoundError(f"run {run_id} does not exist")
        return str(name)

    # -- artifacts -----------------------------------------------------------------
    def put_artifact(self, root: str, path: str, digest: str, size: int) -> None:
        with self.db.write() as conn:
            self._upsert(
                conn,
                artifacts,
                ["root", "path"],
                [
                    {
                        "root": root,
                        "path": path,
                        "digest": digest,
                        "size": size,
                        "created_at": now_ms(),
                    }
                ],
            )

    def artifact_entry(self, root: str, path: str) -> tuple[str, int] | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(artifacts.c.digest, artifacts.c.size).where(
                    artifacts.c.root == root, artifacts.c.path == path
                )
            ).first()
        return None if row is None else (row.digest, row.size)

    def list_artifacts(self, root: str, prefix: str) -> list[ArtifactFile]:
        """Direct children of ``prefix`` (files, and folders made of deeper paths)."""
        base = f"{prefix}/" if prefix else ""
        pattern = _like_escape(base) + "%"
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(artifacts.c.path, artifacts.c.size, artifacts.c.digest)
                .where(artifacts.c.root == root, artifacts.c.path.like(pattern, escape="\\"))
                .order_by(artifacts.c.path)
            ).all()
        out: dict[str, ArtifactFile] = {}
        for path, size, digest in rows:
            rest = path[len(base) :]
            head, sep, _ = rest.partition("/")
            child = base + head
            if sep:
                out.setdefault(child, ArtifactFile(child, True))
            else:
                out[child] = ArtifactFile(child, False, size, digest)
        return list(out.values())

    def artifact_files(self, root: str, prefix: str = "") -> list[tuple[str, str, int]]:
        """Every file (path, digest, size) at or below ``prefix``."""
        clause = artifacts.c.root == root
        if prefix:
            clause = sa.and_(
                clause,
                sa.or_(
                    artifacts.c.path == prefix,
                    artifacts.c.path.like(_like_escape(prefix + "/") + "%", escape="\\"),
                ),
            )
        with self.db.read() as conn:
            return [
                tuple(r)
                for r in conn.execute(  # type: ignore[misc]
                    sa.select(artifacts.c.path, artifacts.c.digest, artifacts.c.size)
                    .where(clause)
                    .order_by(artifacts.c.path)
                )
            ]

    def delete_artifacts(self, root: str, prefix: str = "") -> int:
        clause = artifacts.c.root == root
        if prefix:
            clause = sa.and_(
                clause,
                sa.or_(
                    artifacts.c.path == prefix,
                    artifacts.c.path.like(_like_escape(prefix + "/") + "%", escape="\\"),
                ),
            )
        with self.db.write() as conn:
            return int(conn.execute(sa.delete(artifacts).where(clause)).rowcount)

    # -- garbage collection ----------------------------------------------------------
    def purge_deleted_runs(self, older_than_ms: int | None = None) -> list[str]:
        """Remove deleted runs (and what hangs off them) for good; returns their ids."""
        clause = runs.c.lifecycle_stage == "deleted"
        if older_than_ms is not None:
            clause = sa.and_(clause, runs.c.deleted_at <= older_than_ms)
        with self.db.write() as conn:
            ids = list(conn.execute(sa.select(runs.c.id).where(clause)).scalars())
            for chunk in _chunks(ids):
                for table in (metrics, latest_metrics, params, tags):
                    conn.execute(sa.delete(table).where(table.c.run_id.in_(chunk)))
                conn.execute(
                    sa.delete(artifacts).where(artifacts.c.root.in_([f"runs/{r}" for r in chunk]))
                )
                conn.execute(sa.delete(runs).where(runs.c.id.in_(chunk)))
        return ids

    def referenced_digests(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(sa.select(artifacts.c.digest).distinct()).scalars())


def _run_info(row: sa.Row[Any]) -> RunInfo:
    return RunInfo(
        run_id=row.id,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        user_id=row.user,
        lifecycle_stage=row.lifecycle_stage,
        artifact_uri=row.artifact_uri,
        parent_run_id=row.parent_run_id,
    )


def _experiment_int(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"experiment {experiment_id!r} does not exist") from None


def _view_clause(column: Any, view: str) -> Any:
    if view == "all":
        return sa.true()
    if view not in ("active", "deleted"):
        raise InvalidArgumentError(f"unknown view {view!r}", hint="use active, deleted or all")
    return column == view


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

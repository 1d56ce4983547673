"""SQL for experiments, runs, metrics and artifact manifests.

One class, ``TrackingStore``, over a :class:`~loopline.store.metadata.Database`;
it speaks SQLAlchemy Core, identically on SQLite and PostgreSQL. Validation of
user input happens in :mod:`loopline.tracking.service`; this layer enforces what
needs the database to enforce (existence, param immutability, idempotency).
"""

from __future__ import annotations

import math
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.events import emit
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
    RunUpdate,
    RunWrites,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["ParamConflictError", "RunValues", "TrackingStore", "now_ms"]

# {run_id: {key: value}} for one of metrics, params or tags.
RunValues = dict[str, dict[str, Any]]

_CHUNK = 500  # rows per IN (...) list: well under SQLite's bound-parameter limit
_MAX_DOUBLE = 1.7976931348623157e308


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
        self._experiment_projects: dict[int, int] = {}  # experiments never change project
        self._statements: dict[str, Any] = {}

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
            try:
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
            except sa.exc.IntegrityError as exc:  # created by another process meanwhile
                raise AlreadyExistsError(
                    f"experiment {name!r} already exists",
                    hint="use set_experiment() to reuse it",
                ) from exc
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
        """Delete or restore an experiment and, as in MLflow, its runs.

        Deleting marks the experiment's active runs deleted at the same instant;
        restoring brings back exactly those, not runs deleted on their own before.
        Setting the stage an experiment already has changes nothing.
        """
        if stage not in ("active", "deleted"):
            raise InvalidArgumentError(f"unknown lifecycle stage {stage!r}")
        exp_int = _experiment_int(experiment_id)
        if exp_int == 0 and stage == "deleted":
            raise InvalidArgumentError(
                "the default experiment (id 0) cannot be deleted",
                hint="delete its runs instead",
            )
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(
                    experiments.c.project_id,
                    experiments.c.lifecycle_stage,
                    experiments.c.deleted_at,
                ).where(experiments.c.id == exp_int)
            ).first()
            if row is None:
                raise NotFoundError(
                    f"experiment {experiment_id} does not exist",
                    hint="list experiments with `loopline experiments list --view all`",
                )
            if row.lifecycle_stage == stage:
                return
            deleting = stage == "deleted"
            conn.execute(
                sa.update(experiments)
                .where(experiments.c.id == exp_int)
                .values(lifecycle_stage=stage, updated_at=now, deleted_at=now if deleting else None)
            )
            if deleting:
                followers = runs.c.lifecycle_stage == "active"
            else:
                followers = sa.and_(
                    runs.c.lifecycle_stage == "deleted", runs.c.deleted_at == row.deleted_at
                )
            conn.execute(
                sa.update(runs)
                .where(runs.c.experiment_id == exp_int, followers)
                .values(lifecycle_stage=stage, deleted_at=now if deleting else None)
            )
            kind = "experiment.deleted" if deleting else "experiment.restored"
            emit(conn, kind, "experiment", str(exp_int), actor, {}, row.project_id)

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
    # The write path reuses statements built once per store with bound parameters:
    # building a SQLAlchemy construct costs more than executing it, and a run's whole
    # life (create, params, tags, metrics, end) is one batch of about ten statements.
    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = build()
        return stmt

    def apply(self, batch: RunWrites, *, actor: str) -> None:
        """Apply one batch of buffered writes in a single transaction, at most once."""
        new_ids = {r.run_id for r in batch.new_runs}
        with self.db.write() as conn:
            # Claiming the batch id first makes a concurrent retry of the same batch wait
            # for this transaction (PostgreSQL) and then find it applied.
            claim = self._cached(
                "claim",
                lambda: (
                    self._insert(write_batches)
                    .values(id=sa.bindparam("b_id"), created_at=sa.bindparam("b_at"))
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(write_batches.c.id)
                ),
            )
            if conn.execute(claim, {"b_id": batch.batch_id, "b_at": now_ms()}).first() is None:
                return  # applied before
            if batch.new_runs:
                self._insert_runs(conn, batch.new_runs)
            self._check_runs(conn, batch, new_ids)
            if batch.params:
                self._insert_params(conn, batch.params, new_ids)
            if batch.tags:
                self._upsert(
                    conn,
                    tags,
                    ["run_id", "key"],
                    [{"run_id": r, "key": k, "value": v} for r, k, v in batch.tags],
                )
            if batch.deleted_tags:
                untag = self._cached(
                    "untag",
                    lambda: sa.delete(tags).where(
                        tags.c.run_id == sa.bindparam("d_run"), tags.c.key == sa.bindparam("d_key")
                    ),
                )
                conn.execute(untag, [{"d_run": r, "d_key": k} for r, k in batch.deleted_tags])
            if batch.metrics:
                self._insert_metrics(conn, batch.metrics)
            for update in batch.updates:
                self._update_run(conn, update, actor)
        self.db.note_writes(len(batch))

    def _insert_runs(self, conn: Connection, new_runs: list[NewRun]) -> None:
        exp_ids = sorted({_experiment_int(r.experiment_id) for r in new_runs})
        lookup = self._cached(
            "experiment_stages",
            lambda: sa.select(
                experiments.c.id, experiments.c.lifecycle_stage, experiments.c.project_id
            ).where(experiments.c.id.in_(sa.bindparam("e_ids", expanding=True))),
        )
        found = {row.id: row for row in conn.execute(lookup, {"e_ids": exp_ids})}
        for exp_id in exp_ids:
            if exp_id not in found:
                raise NotFoundError(f"experiment {exp_id} does not exist")
            if found[exp_id].lifecycle_stage != "active":
                raise InvalidStateError(
                    f"experiment {exp_id} is deleted; runs cannot be created in it",
                    hint="restore it with `loopline experiments restore` or use another",
                )
            self._experiment_projects[exp_id] = found[exp_id].project_id
        try:
            conn.execute(
                self._cached("insert_run", lambda: sa.insert(runs)),
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
        except sa.exc.IntegrityError as exc:
            ids = ", ".join(r.run_id for r in new_runs)
            raise AlreadyExistsError(
                f"run {ids} already exists"
                if len(new_runs) == 1
                else f"one of the runs {ids} already exists"
            ) from exc

    def _check_runs(self, conn: Connection, batch: RunWrites, new_ids: set[str]) -> None:
        """Every run a batch writes to must exist and be active."""
        wanted = {p[0] for p in batch.params} | {t[0] for t in batch.tags}
        wanted |= {m[0] for m in batch.metrics} | {d[0] for d in batch.deleted_tags}
        wanted |= {u.run_id for u in batch.updates}
        wanted -= new_ids
        if not wanted:
            return
        lookup = self._cached(
            "run_stages",
            lambda: sa.select(runs.c.id, runs.c.lifecycle_stage).where(
                runs.c.id.in_(sa.bindparam("r_ids", expanding=True))
            ),
        )
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(wanted)):
            found.update((r.id, r.lifecycle_stage) for r in conn.execute(lookup, {"r_ids": chunk}))
        for run_id in sorted(wanted):
            if run_id not in found:
                raise NotFoundError(f"run {run_id} does not exist")
            if found[run_id] != "active":
                raise InvalidStateError(
                    f"run {run_id} is deleted; restore it before logging to it",
                    hint="`loopline runs restore RUN_ID`",
                )

    def _insert_params(
        self, conn: Connection, rows: list[tuple[str, str, str]], new_ids: set[str]
    ) -> None:
        wanted: dict[tuple[str, str], str] = {}
        conflicts: list[tuple[str, str, str, str]] = []
        for run_id, key, value in rows:
            prior = wanted.setdefault((run_id, key), value)
            if prior != value:
                conflicts.append((run_id, key, prior, value))
        existing: dict[tuple[str, str], str] = {}
        stored_runs = sorted({r for r, _ in wanted} - new_ids)  # new runs have no params
        if stored_runs:
            lookup = self._cached(
                "params_of",
                lambda: sa.select(params.c.run_id, params.c.key, params.c.value).where(
                    params.c.run_id.in_(sa.bindparam("p_ids", expanding=True))
                ),
            )
            for chunk in _chunks(stored_runs):
                for row in conn.execute(lookup, {"p_ids": chunk}):
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
            conn.execute(self._cached("insert_params", lambda: sa.insert(params)), fresh)

    def _insert_metrics(
        self, conn: Connection, rows: list[tuple[str, str, float, int, int]]
    ) -> None:
        # NaN is stored as NULL on both databases: SQLite cannot hold NaN (it binds it
        # as NULL by itself), and PostgreSQL would sort NaN above every number.
        if conn.dialect.name == "sqlite":
            values: list[tuple[Any, ...]] = rows
        else:
            values = [(r, k, None if v != v else v, t, s) for r, k, v, t, s in rows]
        _bulk_insert(conn, metrics, ("run_id", "key", "value", "timestamp", "step"), values)
        # The latest point per (run, key): the highest (step, timestamp); on a tie the
        # one logged last, as the upsert below lets an equal point replace the stored one.
        # A stable sort by (step, timestamp), then a dict keeping the last row per pair:
        # both run in C (points usually come in step order, which timsort takes in one pass).
        ordered = sorted(rows, key=itemgetter(4, 3))
        latest = dict(zip(map(itemgetter(0, 1), ordered), ordered, strict=True))
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
                    "value": None if v != v else v,
                }
                for r, k, v, t, s in latest.values()
            ],
            newer_only=True,
        )

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def _upsert(
        self,
        conn: Connection,
        table: sa.Table,
        keys: list[str],
        rows: list[dict[str, Any]],
        *,
        newer_only: bool = False,
    ) -> None:
        def build() -> Any:
            stmt = self._insert(table)
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
            return stmt.on_conflict_do_update(index_elements=keys, set_=updates, where=where)

        name = f"upsert:{table.name}:{','.join(keys)}:{newer_only}"
        conn.execute(self._cached(name, build), rows)

    def _update_run(self, conn: Connection, update: RunUpdate, actor: str) -> None:
        values: dict[str, Any] = {}
        if update.status is not None:
            values["status"] = update.status
            if update.status == RunStatus.RUNNING:
                values["end_time"] = None  # resumed: no longer ended
        if update.end_time is not None:
            values["end_time"] = update.end_time
        if update.run_name is not None:
            values["name"] = update.run_name
        if not values:
            return
        names = sorted(values)
        stmt = self._cached(
            "update_run:" + ",".join(names),
            lambda: (
                sa.update(runs)
                .where(runs.c.id == sa.bindparam("u_run"))
                .values({n: sa.bindparam(f"u_{n}") for n in names})
                .returning(runs.c.experiment_id)
            ),
        )
        bound = {f"u_{n}": v for n, v in values.items()}
        experiment_id = conn.execute(stmt, {"u_run": update.run_id, **bound}).scalar_one()
        if update.status is not None and RunStatus(update.status).terminal:
            emit(
                conn,
                "run.finished",
                "run",
                update.run_id,
                actor,
                {"status": update.status, "experiment_id": str(experiment_id)},
                self._experiment_project(conn, experiment_id),
            )

    def _experiment_project(self, conn: Connection, experiment_id: int) -> int:
        pid = self._experiment_projects.get(experiment_id)
        if pid is None:
            pid = conn.execute(
                sa.select(experiments.c.project_id).where(experiments.c.id == experiment_id)
            ).scalar_one()
            self._experiment_projects[experiment_id] = pid
        return pid

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
        if not rows:
            return []
        metrics_, params_, tags_ = self.run_data(conn, [row[0] for row in rows])
        return [
            Run(
                _run_info(row),
                RunData(metrics_.get(row[0], {}), params_.get(row[0], {}), tags_.get(row[0], {})),
            )
            for row in rows
        ]

    def run_data(self, conn: Connection, ids: list[str]) -> tuple[RunValues, RunValues, RunValues]:
        """Latest metrics, params and tags of runs, each as {run_id: {key: value}}.

        One query per table whatever the number of runs, and params and tags come
        back as one JSON object per run: building Python rows, not SQL, is what
        costs here when a search returns thousands of runs.
        """
        metrics_: dict[str, dict[str, Any]] = {}
        params_: dict[str, dict[str, Any]] = {}
        tags_: dict[str, dict[str, Any]] = {}
        bound: list[dict[str, Any]]
        if self.db.dialect == "sqlite":
            bound = [{"ids": orjson.dumps(ids).decode()}]
        else:
            bound = [{"ids": list(chunk)} for chunk in _chunks(ids, 10_000)]
        nan = math.nan
        for values in bound:
            for run_id, key, value in conn.execute(self._hydrate_stmt("metrics"), values).all():
                found = metrics_.get(run_id)
                if found is None:
                    found = metrics_[run_id] = {}
                found[key] = nan if value is None else value
            for run_id, blob in conn.execute(self._hydrate_stmt("params"), values).all():
                params_[run_id] = _json_object(blob)
            for run_id, blob in conn.execute(self._hydrate_stmt("tags"), values).all():
                tags_[run_id] = _json_object(blob)
        return metrics_, params_, tags_

    def _hydrate_stmt(self, what: str) -> Any:
        def build() -> Any:
            t = {"metrics": latest_metrics, "params": params, "tags": tags}[what]
            if what == "metrics":
                columns: list[Any] = [t.c.run_id, t.c.key, t.c.value]
            elif self.db.dialect == "sqlite":
                columns = [t.c.run_id, sa.func.json_group_object(t.c.key, t.c.value)]
            else:
                columns = [t.c.run_id, sa.func.json_object_agg(t.c.key, t.c.value)]
            if self.db.dialect == "sqlite":
                # One bound JSON array joined in, instead of thousands of IN parameters.
                each = sa.func.json_each(sa.bindparam("ids")).table_valued("value")
                stmt = sa.select(*columns).select_from(each.join(t, t.c.run_id == each.c.value))
            else:
                stmt = sa.select(*columns).where(
                    t.c.run_id.in_(sa.bindparam("ids", expanding=True))
                )
            return stmt if what == "metrics" else stmt.group_by(t.c.run_id)

        return self._cached(f"hydrate:{what}", build)

    def runs_json(
        self, conn: Connection, query: sa.Select[Any], *, tag_chars: int | None
    ) -> list[str]:
        """Each run of a search ``query`` as one JSON array built by the database.

        ``[id, name, status, start_time, end_time, user, experiment_id, parent_run_id,
        {params}, {latest metrics}, {tags} or null]``, in the query's order. The rows
        cross from SQL to the caller as finished JSON text: a table of 10,000 runs
        costs no Python object per run or per value, only one string per run.
        Infinite metric values come out as null (JSON has no infinity), as NaN does.
        Tags are left out (null) when ``tag_chars`` is None, else cut to that length.
        """
        sqlite = self.db.dialect == "sqlite"
        array = sa.func.json_array if sqlite else sa.func.json_build_array
        group = sa.func.json_group_object if sqlite else sa.func.json_object_agg
        finite = sa.case(
            (latest_metrics.c.value.between(-_MAX_DOUBLE, _MAX_DOUBLE), latest_metrics.c.value)
        )

        def values(table: sa.Table, value: Any) -> Any:
            return (
                sa.select(group(table.c.key, value))
                .where(table.c.run_id == runs.c.id)
                .scalar_subquery()
            )

        tag_values = (
            values(tags, sa.func.substr(tags.c.value, 1, tag_chars))
            if tag_chars is not None
            else sa.null()
        )
        row: sa.ColumnElement[Any] = array(
            runs.c.id,
            runs.c.name,
            runs.c.status,
            runs.c.start_time,
            runs.c.end_time,
            runs.c.user,
            sa.cast(runs.c.experiment_id, sa.String),
            runs.c.parent_run_id,
            values(params, params.c.value),
            values(latest_metrics, finite),
            tag_values,
        )
        if not sqlite:  # psycopg would parse json into Python objects: keep it text
            row = sa.cast(row, sa.Text)
        result = conn.execute(query.with_only_columns(row))
        try:
            return [found for (found,) in result.cursor.fetchall()]
        finally:
            result.close()

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

    def require_active_run(self, run_id: str) -> None:
        """Raise unless the run exists and is not deleted."""
        with self.db.read() as conn:
            stage = self._require_run(conn, run_id).lifecycle_stage
        if stage != "active":
            raise InvalidStateError(
                f"run {run_id} is deleted; restore it before logging to it",
                hint="`loopline runs restore RUN_ID`",
            )

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
                (path, digest, size)
                for path, digest, size in conn.execute(
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


_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _bulk_insert(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows straight through the driver: COPY on PostgreSQL, else executemany.

    The hot path of metric logging: SQLAlchemy's executemany with one dict per row
    costs more than the database's own work, so rows go as tuples to the DBAPI.
    """
    if not rows:
        return
    prep = conn.dialect.identifier_preparer
    names = ", ".join(prep.quote(c) for c in columns)
    target = prep.format_table(table)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        finally:
            cursor.close()
        return
    marker = _MARKERS.get(conn.dialect.paramstyle)
    if marker is None:  # pragma: no cover - every supported driver has one above
        conn.execute(sa.insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    marks = ", ".join([marker] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", rows)


def _json_object(blob: str | dict[str, str]) -> dict[str, str]:
    # PostgreSQL's driver decodes json itself; SQLite hands back text.
    return blob if isinstance(blob, dict) else orjson.loads(blob)


_RUN_COLUMNS = tuple(c.name for c in runs.columns)


def _run_info(row: sa.Row[Any]) -> RunInfo:
    # Runs once per run of a search result: unpack the row's tuple (named access on
    # a Row costs a lookup per field).
    if row._fields != _RUN_COLUMNS:
        raise AssertionError(f"expected a full runs row, got {row._fields}")
    values: tuple[Any, ...] = tuple(row)
    (run_id, exp_id, name, status, start, end, user, stage, parent, artifact_uri, _) = values
    return RunInfo(run_id, str(exp_id), name, status, start, end, user, stage, artifact_uri, parent)


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

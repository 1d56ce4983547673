"""SQL over the pipelines tables: runs, steps, the step cache, lineage edges, dead runs.

Every write is one transaction; a pipeline's state changes (step started, step
finished with its outputs, cache entry, artifact rows of the child run) land
together or not at all.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import NotFoundError
from loopline.store.metadata.schema import artifacts, lineage, projects, runs
from loopline.store.metadata.schema_pipelines import (
    pipeline_cache,
    pipeline_runs,
    pipeline_steps,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["HOST", "PipelineStore", "RunRecord", "StepRecord", "StepWrite", "now_ms"]

HOST = socket.gethostname()
STALE_HEARTBEAT_MS = 10 * 60 * 1000
"""A run on another host whose heartbeat is older than this is taken for dead."""
TERMINAL = ("succeeded", "failed", "gate_failed", "waiting_approval", "killed")


def now_ms() -> int:
    return int(time.time() * 1000)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(slots=True)
class StepRecord:
    """One step of a pipeline run, as stored."""

    name: str
    status: str
    child_run_id: str | None = None
    source: str = ""
    cache_key: str | None = None
    attempts: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    logs: str = ""
    started_at: int | None = None
    ended_at: int | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self, *, logs: bool = True) -> dict[str, Any]:
        body = {
            "name": self.name,
            "status": self.status,
            "child_run_id": self.child_run_id,
            "source": self.source,
            "cache_key": self.cache_key,
            "attempts": self.attempts,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error": self.error,
            "traceback": self.traceback,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
        }
        if logs:
            body["logs"] = self.logs
        return body


@dataclass(slots=True)
class StepWrite:
    """One buffered change of a step (see :meth:`PipelineStore.update_steps_in`)."""

    name: str
    values: dict[str, Any]
    cache: tuple[str, dict[str, Any]] | None = None
    """(key, outputs): record a cache entry."""
    artifacts_of: tuple[str, dict[str, tuple[str, int]]] | None = None
    """(child run, path -> (digest, size)): the child run's files."""
    edges: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class RunRecord:
    """A pipeline run, as stored (``id`` is its tracked run's id)."""

    id: str
    pipeline: str
    target: str
    status: str
    executor: str
    params: dict[str, Any]
    dag: dict[str, Any]
    error: str
    host: str
    pid: int
    resumed_from: str | None
    firing_id: int | None
    created_by: str
    started_at: int
    ended_at: int | None
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    def to_dict(self, *, logs: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "target": self.target,
            "status": self.status,
            "executor": self.executor,
            "params": self.params,
            "dag": self.dag,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
            "resumed_from": self.resumed_from,
            "firing_id": self.firing_id,
            "created_by": self.created_by,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
            "steps": [s.to_dict(logs=logs) for s in self.steps],
        }


def _step(row: Any) -> StepRecord:
    return StepRecord(
        name=row.name,
        status=row.status,
        child_run_id=row.child_run_id,
        source=row.source,
        cache_key=row.cache_key,
        attempts=row.attempts,
        inputs=orjson.loads(row.inputs_json),
        outputs=orjson.loads(row.outputs_json),
        error=row.error,
        traceback=row.traceback,
        logs=row.logs,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def _run(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        pipeline=row.pipeline,
        target=row.target,
        status=row.status,
        executor=row.executor,
        params=orjson.loads(row.params_json),
        dag=orjson.loads(row.dag_json),
        error=row.error,
        host=row.host,
        pid=row.pid,
        resumed_from=row.resumed_from,
        firing_id=row.firing_id,
        created_by=row.created_by,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PipelineStore:
    """The pipelines tables of one metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._statements: dict[str, Any] = {}

    # -- runs ----------------------------------------------------------------------
    def project_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if found is None:
            raise NotFoundError(f"project {name!r} does not exist")
        return int(found)

    def create_run(self, **fields: Any) -> None:
        """The run and its steps (all pending), with lineage edges, in one transaction."""
        with self.db.write() as conn:
            self.create_run_in(conn, **fields)

    def create_run_in(
        self,
        conn: Connection,
        *,
        run_id: str,
        project: str,
        pipeline: str,
        target: str,
        executor: str,
        params: dict[str, Any],
        dag: dict[str, Any],
        steps: list[tuple[str, str]],
        user: str,
        resumed_from: str | None = None,
        firing_id: int | None = None,
        edges: list[tuple[str, str, str, str, str, str]] | None = None,
    ) -> None:
        """:meth:`create_run` inside the caller's transaction."""
        now = now_ms()
        conn.execute(
            sa.insert(pipeline_runs).values(
                id=run_id,
                project_id=self.project_id(conn, project),
                pipeline=pipeline,
                target=target,
                status="running",
                executor=executor,
                params_json=_json(params),
                dag_json=_json(dag),
                host=HOST,
                pid=os.getpid(),
                resumed_from=resumed_from,
                firing_id=firing_id,
                created_by=user,
                started_at=now,
                heartbeat_at=now,
            )
        )
        conn.execute(
            sa.insert(pipeline_steps),
            [
                {"run_id": run_id, "name": name, "status": "pending", "source": source}
                for name, source in steps
            ],
        )
        self._edges(conn, list(edges or []))

    def apply(self, ops: list[Callable[[Connection], None]]) -> None:
        """Run several writes (``*_in`` methods bound with their arguments) in one transaction."""
        if not ops:
            return
        with self.db.write() as conn:
            for op in ops:
                op(conn)

    @staticmethod
    def _edges(conn: Connection, edges: list[tuple[str, str, str, str, str, str]]) -> None:
        if not edges:
            return
        now = now_ms()
        rows = [
            {
                "src_type": a,
                "src_id": b,
                "dst_type": c,
                "dst_id": d,
                "relation": r,
                "context": ctx,
                "created_at": now,
            }
            for a, b, c, d, r, ctx in edges
        ]
        keys = ("src_type", "src_id", "dst_type", "dst_id", "relation")
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        conn.execute(insert(lineage).on_conflict_do_nothing(index_elements=list(keys)), rows)

    def add_edges(self, edges: list[tuple[str, str, str, str, str, str]]) -> None:
        with self.db.write() as conn:
            self._edges(conn, edges)

    def finish_run(self, run_id: str, status: str, error: str = "") -> None:
        with self.db.write() as conn:
            self.finish_run_in(conn, run_id, status, error)

    @staticmethod
    def finish_run_in(conn: Connection, run_id: str, status: str, error: str = "") -> None:
        conn.execute(
            sa.update(pipeline_runs)
            .where(pipeline_runs.c.id == run_id)
            .values(status=status, error=error[:100_000], ended_at=now_ms())
        )

    def heartbeat(self, run_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(pipeline_runs)
                .where(pipeline_runs.c.id == run_id)
                .values(heartbeat_at=now_ms())
            )

    def update_step(self, run_id: str, name: str, **values: Any) -> None:
        self.update_step_with(run_id, name, values)

    def update_step_with(
        self, run_id: str, name: str, values: dict[str, Any], **extra: Any
    ) -> None:
        """:meth:`update_step_in` in a transaction of its own."""
        with self.db.write() as conn:
            self.update_step_in(conn, run_id, name, values, **extra)

    def update_step_in(
        self,
        conn: Connection,
        run_id: str,
        name: str,
        values: dict[str, Any],
        *,
        cache: tuple[str, dict[str, Any]] | None = None,
        artifacts_of: tuple[str, dict[str, tuple[str, int]]] | None = None,
        edges: list[tuple[str, str, str, str, str, str]] | None = None,
    ) -> None:
        """Update a step; with ``cache`` (key, outputs) record a cache entry, with
        ``artifacts_of`` (child run, path -> (digest, size)) the child run's files."""
        write = StepWrite(name, values, cache, artifacts_of, list(edges or []))
        self.update_steps_in(conn, run_id, [write])

    def update_steps_in(self, conn: Connection, run_id: str, writes: list[StepWrite]) -> None:
        """Several step updates, each kind of row written by one executemany statement.

        Building a SQLAlchemy statement costs more than running it: the statements
        are built once per store (per set of updated columns) with bound parameters.
        """
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        cache_rows, file_rows, edges = [], [], []
        now = now_ms()
        for write in writes:
            values = dict(write.values)
            for key in ("inputs", "outputs"):
                if key in values:
                    values[f"{key}_json"] = _json(values.pop(key))
            row = {f"v_{k}": v for k, v in values.items()} | {"w_run": run_id, "w_name": write.name}
            by_columns.setdefault(tuple(sorted(values)), []).append(row)
            if write.cache is not None:
                key, outputs = write.cache
                cache_rows.append(
                    {
                        "key": key,
                        "step": write.name,
                        "outputs_json": _json(outputs),
                        "run_id": run_id,
                        "child_run_id": values.get("child_run_id"),
                        "created_at": now,
                    }
                )
            if write.artifacts_of is not None:
                child, files = write.artifacts_of
                file_rows += [
                    {"root": f"runs/{child}", "path": p, "digest": d, "size": n, "created_at": now}
                    for p, (d, n) in files.items()
                ]
            edges += write.edges
        for columns, rows in by_columns.items():
            conn.execute(self._step_update(columns), rows)
        if cache_rows:
            keys = [r["key"] for r in cache_rows]
            conn.execute(sa.delete(pipeline_cache).where(pipeline_cache.c.key.in_(keys)))
            conn.execute(sa.insert(pipeline_cache), cache_rows)
        if file_rows:
            conn.execute(
                self._statement(
                    "artifact-delete",
                    lambda: sa.delete(artifacts).where(
                        artifacts.c.root == sa.bindparam("root"),
                        artifacts.c.path == sa.bindparam("path"),
                    ),
                ),
                [{"root": r["root"], "path": r["path"]} for r in file_rows],
            )
            conn.execute(sa.insert(artifacts), file_rows)
        self._edges(conn, edges)

    def _statement(self, name: str, build: Callable[[], Any]) -> Any:
        found = self._statements.get(name)
        if found is None:
            found = self._statements[name] = build()
        return found

    def _step_update(self, columns: tuple[str, ...]) -> Any:
        return self._statement(
            "step-update:" + ",".join(columns),
            lambda: (
                sa.update(pipeline_steps)
                .where(
                    pipeline_steps.c.run_id == sa.bindparam("w_run"),
                    pipeline_steps.c.name == sa.bindparam("w_name"),
                )
                .values({c: sa.bindparam(f"v_{c}") for c in columns})
            ),
        )

    def cached(self, key: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(pipeline_cache.c.outputs_json, pipeline_cache.c.run_id).where(
                    pipeline_cache.c.key == key
                )
            ).first()
        if row is None:
            return None
        found: dict[str, Any] = orjson.loads(row.outputs_json)
        return found

    # -- reads -------------------------------------------------------------------
    def get_run(self, run_id: str, *, steps: bool = True) -> RunRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id == run_id)).first()
            if row is None:
                matches = conn.execute(
                    sa.select(pipeline_runs.c.id)
                    .where(pipeline_runs.c.id.startswith(run_id, autoescape=True))
                    .limit(2)
                ).all()
                if len(matches) == 1 and len(run_id) >= 4:
                    row = conn.execute(
                        sa.select(pipeline_runs).where(pipeline_runs.c.id == matches[0].id)
                    ).first()
            if row is None:
                raise NotFoundError(
                    f"pipeline run {run_id!r} does not exist",
                    hint="list them with `loopline pipeline runs`",
                )
            record = _run(row)
            if steps:
                record.steps = [
                    _step(r)
                    for r in conn.execute(
                        sa.select(pipeline_steps).where(pipeline_steps.c.run_id == record.id)
                    )
                ]
        if steps and record.dag.get("nodes"):
            order = {n["name"]: i for i, n in enumerate(record.dag["nodes"])}
            record.steps.sort(key=lambda s: order.get(s.name, len(order)))
        return record

    def list_runs(
        self,
        *,
        project: str | None = None,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        query = sa.select(pipeline_runs).order_by(
            pipeline_runs.c.started_at.desc(), pipeline_runs.c.id
        )
        with self.db.read() as conn:
            if project is not None:
                query = query.where(pipeline_runs.c.project_id == self.project_id(conn, project))
            if pipeline:
                query = query.where(pipeline_runs.c.pipeline == pipeline)
            if status:
                query = query.where(pipeline_runs.c.status == status)
            rows = conn.execute(query.limit(limit)).all()
            records = [_run(r) for r in rows]
            if records:
                by_id = {r.id: r for r in records}
                for row in conn.execute(
                    sa.select(pipeline_steps).where(pipeline_steps.c.run_id.in_(list(by_id)))
                ):
                    by_id[row.run_id].steps.append(_step(row))
        return records

    # -- dead runs -----------------------------------------------------------------
    def fail_dead_runs(self) -> list[str]:
        """Mark failed the runs whose process is gone (killed, crashed, machine lost).

        On this host a run's pid tells; elsewhere a heartbeat older than
        :data:`STALE_HEARTBEAT_MS` does. The tracked runs and step child runs follow.
        """
        now = now_ms()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    pipeline_runs.c.id,
                    pipeline_runs.c.host,
                    pipeline_runs.c.pid,
                    pipeline_runs.c.heartbeat_at,
                ).where(pipeline_runs.c.status == "running")
            ).all()
        dead = [
            r
            for r in rows
            if (r.host == HOST and r.pid != os.getpid() and not _alive(r.pid))
            or (r.host != HOST and now - r.heartbeat_at > STALE_HEARTBEAT_MS)
        ]
        if not dead:
            return []
        ids = [r.id for r in dead]
        with self.db.write() as conn:
            for r in dead:
                message = (
                    f"the process running it (pid {r.pid} on {r.host}) ended without finishing"
                )
                conn.execute(
                    sa.update(pipeline_runs)
                    .where(pipeline_runs.c.id == r.id, pipeline_runs.c.status == "running")
                    .values(status="failed", error=message, ended_at=now)
                )
                conn.execute(
                    sa.update(pipeline_steps)
                    .where(
                        pipeline_steps.c.run_id == r.id,
                        pipeline_steps.c.status.in_(["running", "pending"]),
                    )
                    .values(status="failed", error=message, ended_at=now)
                )
            children = [
                c
                for (c,) in conn.execute(
                    sa.select(pipeline_steps.c.child_run_id).where(
                        pipeline_steps.c.run_id.in_(ids),
                        pipeline_steps.c.child_run_id.is_not(None),
                    )
                )
            ]
            conn.execute(
                sa.update(runs)
                .where(runs.c.id.in_(ids + children), runs.c.status == "RUNNING")
                .values(status="FAILED", end_time=now)
            )
        return ids

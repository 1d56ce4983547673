"""SQL for MLflow 3's logged models (``models:/m-<id>``).

A logged model belongs to an experiment, usually comes from a run, and keeps its
files under the artifact root ``logged_models/<id>``. It is created PENDING, its
files are uploaded, and it is finalized READY (or FAILED). Registering it copies
its files into a model version.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopline.errors import InvalidStateError, NotFoundError
from loopline.events import emit
from loopline.registry._filter import compare, compile_clauses, parse_filter, parse_order_by
from loopline.registry.entities import LoggedModel
from loopline.store.metadata.schema import (
    artifacts,
    experiments,
    lineage,
    logged_model_params,
    logged_model_tags,
    logged_models,
)
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["STATUSES", "LoggedModelStore"]

STATUSES = ("PENDING", "READY", "FAILED")


class LoggedModelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: sa.Table) -> Any:
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            return insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["model_id", "key"], set_={"value": stmt.excluded.value}
            ),
            rows,
        )

    def create(
        self,
        *,
        experiment_id: str,
        name: str,
        source_run_id: str | None,
        model_type: str,
        flavor: str,
        params: dict[str, str],
        tags: dict[str, str],
        actor: str,
    ) -> LoggedModel:
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        with self.db.write() as conn:
            exp = conn.execute(
                sa.select(experiments.c.project_id, experiments.c.lifecycle_stage).where(
                    experiments.c.id == _exp_int(experiment_id)
                )
            ).first()
            if exp is None:
                raise NotFoundError(f"experiment {experiment_id} does not exist")
            if exp.lifecycle_stage != "active":
                raise InvalidStateError(f"experiment {experiment_id} is deleted")
            conn.execute(
                sa.insert(logged_models).values(
                    id=model_id,
                    experiment_id=_exp_int(experiment_id),
                    run_id=source_run_id,
                    source_run_id=source_run_id,
                    name=name,
                    flavor=flavor,
                    status="PENDING",
                    model_type=model_type,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._upsert(conn, logged_model_params, _kv(model_id, params))
            self._upsert(conn, logged_model_tags, _kv(model_id, tags))
            if source_run_id:
                conn.execute(
                    self._insert(lineage)
                    .values(
                        src_type="run",
                        src_id=source_run_id,
                        dst_type="logged_model",
                        dst_id=model_id,
                        relation="output",
                        created_at=now,
                    )
                    .on_conflict_do_nothing(
                        index_elements=["src_type", "src_id", "dst_type", "dst_id", "relation"]
                    )
                )
            payload = {"model_id": model_id, "name": name, "source_run_id": source_run_id}
            emit(
                conn,
                "logged_model.created",
                "logged_model",
                model_id,
                actor,
                payload,
                exp.project_id,
            )
            return self._hydrate(conn, [self._row(conn, model_id)])[0]

    def _row(self, conn: Connection, model_id: str, *, allow_deleted: bool = False) -> sa.Row[Any]:
        clauses: list[Any] = [logged_models.c.id == model_id]
        if not allow_deleted:
            clauses.append(logged_models.c.deleted_at.is_(None))
        row = conn.execute(sa.select(logged_models).where(*clauses)).first()
        if row is None:
            raise NotFoundError(
                f"logged model {model_id!r} does not exist",
                hint="logged model ids look like m-<32 hex characters>",
            )
        return row

    def _hydrate(self, conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[LoggedModel]:
        ids = [r.id for r in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        found_params: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for table, into in ((logged_model_tags, tags), (logged_model_params, found_params)):
                for mid, key, value in conn.execute(
                    sa.select(table.c.model_id, table.c.key, table.c.value).where(
                        table.c.model_id.in_(ids)
                    )
                ):
                    into[mid][key] = value
        return [
            LoggedModel(
                model_id=r.id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                source_run_id=r.source_run_id,
                status=r.status,
                model_type=r.model_type,
                flavor=r.flavor,
                tags=tags[r.id],
                params=found_params[r.id],
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        with self.db.read() as conn:
            return self._hydrate(conn, [self._row(conn, model_id, allow_deleted=allow_deleted)])[0]

    def search(
        self,
        *,
        experiment_ids: list[str],
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[LoggedModel]:
        columns = {
            "name": logged_models.c.name,
            "model_id": logged_models.c.id,
            "source_run_id": logged_models.c.source_run_id,
            "model_type": logged_models.c.model_type,
            "status": logged_models.c.status,
            "flavor": logged_models.c.flavor,
        }

        def tag(key: str, op: str, value: Any) -> sa.ColumnElement[bool]:
            return sa.exists().where(
                logged_model_tags.c.model_id == logged_models.c.id,
                logged_model_tags.c.key == key,
                compare(logged_model_tags.c.value, op, value),
            )

        where = compile_clauses(parse_filter(filter_string), columns, tag)
        order = parse_order_by(
            order_by,
            {
                "name": logged_models.c.name,
                "creation_timestamp": logged_models.c.created_at,
                "creation_time": logged_models.c.created_at,
                "last_updated_timestamp": logged_models.c.updated_at,
            },
        )
        if experiment_ids:
            where.append(logged_models.c.experiment_id.in_([_exp_int(e) for e in experiment_ids]))
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(logged_models)
                .where(logged_models.c.deleted_at.is_(None), *where)
                .order_by(*order, logged_models.c.created_at.desc(), logged_models.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return self._hydrate(conn, rows)

    def finalize(
        self, model_id: str, status: str, *, flavor: str | None, actor: str
    ) -> LoggedModel:
        values: dict[str, Any] = {"status": status, "updated_at": now_ms()}
        if flavor:
            values["flavor"] = flavor
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            conn.execute(
                sa.update(logged_models).where(logged_models.c.id == model_id).values(**values)
            )
            payload = {"model_id": model_id, "status": status}
            emit(
                conn,
                "logged_model.finalized",
                "logged_model",
                model_id,
                actor,
                payload,
                self._project(conn, row.experiment_id),
            )
            return self._hydrate(conn, [self._row(conn, model_id)])[0]

    def set_tags(self, model_id: str, tags: dict[str, str], *, actor: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            self._upsert(conn, logged_model_tags, _kv(model_id, tags))
            self._touch(conn, model_id)
            payload = {"model_id": model_id, "tags": tags}
            emit(
                conn,
                "logged_model.tags_set",
                "logged_model",
                model_id,
                actor,
                payload,
                self._project(conn, row.experiment_id),
            )

    def delete_tag(self, model_id: str, key: str, *, actor: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            deleted = conn.execute(
                sa.delete(logged_model_tags).where(
                    logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
                )
            ).rowcount
            if not deleted:
                raise NotFoundError(f"logged model {model_id} has no tag {key!r}")
            self._touch(conn, model_id)
            payload = {"model_id": model_id, "key": key}
            emit(
                conn,
                "logged_model.tag_deleted",
                "logged_model",
                model_id,
                actor,
                payload,
                self._project(conn, row.experiment_id),
            )

    def log_params(self, model_id: str, params: dict[str, str], *, actor: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            self._upsert(conn, logged_model_params, _kv(model_id, params))
            self._touch(conn, model_id)
            payload = {"model_id": model_id, "params": params}
            emit(
                conn,
                "logged_model.params_logged",
                "logged_model",
                model_id,
                actor,
                payload,
                self._project(conn, row.experiment_id),
            )

    def delete(self, model_id: str, *, actor: str) -> None:
        now = now_ms()
        with self.db.write() as conn:
            row = self._row(conn, model_id)
            conn.execute(
                sa.update(logged_models)
                .where(logged_models.c.id == model_id)
                .values(deleted_at=now, updated_at=now)
            )
            conn.execute(
                sa.delete(artifacts).where(artifacts.c.root == f"logged_models/{model_id}")
            )
            emit(
                conn,
                "logged_model.deleted",
                "logged_model",
                model_id,
                actor,
                {"model_id": model_id},
                self._project(conn, row.experiment_id),
            )

    def of_run(self, run_id: str, name: str) -> list[LoggedModel]:
        """Live logged models named ``name`` that ``run_id`` produced, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(logged_models)
                .where(
                    logged_models.c.source_run_id == run_id,
                    logged_models.c.name == name,
                    logged_models.c.deleted_at.is_(None),
                )
                .order_by(logged_models.c.created_at.desc())
            ).all()
            return self._hydrate(conn, rows)

    def _touch(self, conn: Connection, model_id: str) -> None:
        conn.execute(
            sa.update(logged_models)
            .where(logged_models.c.id == model_id)
            .values(updated_at=now_ms())
        )

    def _project(self, conn: Connection, experiment_id: int) -> int:
        return int(
            conn.execute(
                sa.select(experiments.c.project_id).where(experiments.c.id == experiment_id)
            ).scalar_one()
        )


def _kv(model_id: str, values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]


def _exp_int(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"experiment {experiment_id!r} does not exist") from None

"""Reading registry rows into entities: shared by the store's reads and writes.

Every function takes an open connection, so a write can return what it wrote from
inside its own transaction.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.registry.entities import ModelVersion, RegisteredModel
from loopline.store.metadata.schema import (
    model_aliases,
    model_version_tags,
    model_versions,
    projects,
    registered_model_tags,
    registered_models,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

__all__ = [
    "VERSION_COLUMNS",
    "hydrate_models",
    "hydrate_versions",
    "model_columns",
    "model_row",
    "project_id",
    "require_model",
    "require_version",
    "select_versions",
    "statements",
    "version_columns",
]

_CHUNK = 500
_project_ids: dict[tuple[str, str], int] = {}

# A version row joined with its model's name.
VERSION_COLUMNS = (
    model_versions.c.id,
    model_versions.c.model_id,
    registered_models.c.name,
    model_versions.c.version,
    model_versions.c.source,
    model_versions.c.run_id,
    model_versions.c.logged_model_id,
    model_versions.c.flavor,
    model_versions.c.signature_json,
    model_versions.c.status,
    model_versions.c.review_status,
    model_versions.c.description,
    model_versions.c.created_at,
    model_versions.c.created_by,
    model_versions.c.updated_at,
)


def _json_rows(dialect: str, *columns: Any) -> Any:
    """An aggregate of ``columns`` over a subquery's rows as a JSON array of arrays."""
    if dialect == "postgresql":
        return sa.func.coalesce(
            sa.func.json_agg(sa.func.json_build_array(*columns)),
            sa.literal_column("'[]'::json"),
        )
    return sa.func.json_group_array(sa.func.json_array(*columns))


def _from_json(value: Any) -> list[Any]:
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)


@functools.cache
def version_columns(dialect: str) -> tuple[Any, ...]:
    """VERSION_COLUMNS plus the version's tags and aliases, so one query reads a version."""
    vt, va = model_version_tags.alias("vt"), model_aliases.alias("va")
    tags = (
        sa.select(_json_rows(dialect, vt.c.key, vt.c.value))
        .where(vt.c.version_id == model_versions.c.id)
        .correlate(model_versions)
        .scalar_subquery()
        .label("tags_json")
    )
    aliases = (
        sa.select(_json_rows(dialect, va.c.alias))
        .where(va.c.version_id == model_versions.c.id)
        .correlate(model_versions)
        .scalar_subquery()
        .label("aliases_json")
    )
    return (*VERSION_COLUMNS, tags, aliases)


def select_versions(dialect: str) -> sa.Select[Any]:
    """Versions with their model's name, tags and aliases (add WHERE clauses)."""
    return sa.select(*version_columns(dialect)).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )


class _Statements:
    """The hot reads, built once per dialect with bound parameters (no per-call SQL building)."""

    def __init__(self, dialect: str) -> None:
        live_model = (
            registered_models.c.project_id == sa.bindparam("pid"),
            registered_models.c.name == sa.bindparam("name"),
            registered_models.c.deleted_at.is_(None),
        )
        live = model_versions.c.deleted_at.is_(None)
        self.by_alias = (
            sa.select(*version_columns(dialect))
            .select_from(model_aliases)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .join(registered_models, registered_models.c.id == model_aliases.c.model_id)
            .where(*live_model, model_aliases.c.alias == sa.bindparam("alias"))
        )
        self.by_number = select_versions(dialect).where(
            *live_model, live, model_versions.c.version == sa.bindparam("version")
        )
        self.latest = (
            select_versions(dialect)
            .where(*live_model, live)
            .order_by(model_versions.c.version.desc())
            .limit(1)
        )
        self.of_model = (
            select_versions(dialect)
            .where(*live_model, live)
            .order_by(model_versions.c.version)
            .limit(sa.bindparam("limit"))
        )
        self.model = sa.select(*model_columns(dialect)).where(*live_model)


@functools.cache
def statements(dialect: str) -> _Statements:
    return _Statements(dialect)


@functools.cache
def model_columns(dialect: str) -> tuple[Any, ...]:
    """A registered model's columns plus its tags, aliases and latest version number."""
    mt, ma, mv = (
        registered_model_tags.alias("mt"),
        model_aliases.alias("ma"),
        model_versions.alias("mv"),
    )
    tags = (
        sa.select(_json_rows(dialect, mt.c.key, mt.c.value))
        .where(mt.c.model_id == registered_models.c.id)
        .correlate(registered_models)
        .scalar_subquery()
        .label("tags_json")
    )
    aliases = (
        sa.select(_json_rows(dialect, ma.c.alias, mv.c.version))
        .select_from(ma.join(mv, mv.c.id == ma.c.version_id))
        .where(ma.c.model_id == registered_models.c.id)
        .correlate(registered_models)
        .scalar_subquery()
        .label("aliases_json")
    )
    latest = (
        sa.select(sa.func.max(mv.c.version))
        .where(mv.c.model_id == registered_models.c.id, mv.c.deleted_at.is_(None))
        .correlate(registered_models)
        .scalar_subquery()
        .label("latest_version")
    )
    return (*registered_models.c, tags, aliases, latest)


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def project_id(conn: Connection, name: str) -> int:
    """The id of project ``name`` (cached per database)."""
    key = (str(conn.engine.url), name)
    found = _project_ids.get(key)
    if found is None:
        found = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if found is None:
            raise NotFoundError(
                f"project {name!r} does not exist",
                hint="the 'default' project always exists; create others first",
            )
        _project_ids[key] = found
    return found


def model_row(conn: Connection, pid: int, name: str, *, lock: bool = False) -> sa.Row[Any] | None:
    """The live registered model ``name``; ``lock`` holds its row until the transaction ends.

    Every write that changes a model's versions or aliases takes this lock first, so on
    PostgreSQL such writes to one model happen one after the other (SQLite's writers are
    serialised anyway by ``BEGIN IMMEDIATE``).
    """
    query = sa.select(registered_models).where(
        registered_models.c.project_id == pid,
        registered_models.c.name == name,
        registered_models.c.deleted_at.is_(None),
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def require_model(conn: Connection, pid: int, name: str, *, lock: bool = False) -> sa.Row[Any]:
    row = model_row(conn, pid, name, lock=lock)
    if row is None:
        raise NotFoundError(
            f"registered model {name!r} does not exist",
            hint="list models with `loopline models list`",
        )
    return row


def require_version(conn: Connection, model: sa.Row[Any], version: int) -> Any:
    """The live version ``version`` of ``model`` (a row of VERSION_COLUMNS)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgumentError(f"version numbers are integers from 1, got {version!r}")
    row = conn.execute(
        select_versions(conn.dialect.name).where(
            model_versions.c.model_id == model.id,
            model_versions.c.version == version,
            model_versions.c.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFoundError(
            f"version {version} of model {model.name!r} does not exist",
            hint=f"list its versions with `loopline models versions {model.name}`",
        )
    return row


def to_version(r: Any) -> ModelVersion:
    """A row of :func:`version_columns` as a ModelVersion."""
    return ModelVersion(
        name=r.name,
        version=r.version,
        version_id=r.id,
        source=r.source,
        run_id=r.run_id,
        logged_model_id=r.logged_model_id,
        flavor=r.flavor,
        signature=orjson.loads(r.signature_json) if r.signature_json else None,
        status=r.status,
        review_status=r.review_status,
        description=r.description,
        tags=dict(_from_json(r.tags_json)),
        aliases=sorted(a[0] for a in _from_json(r.aliases_json)),
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
    )


def hydrate_versions(conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
    """Versions from rows of :func:`version_columns`, in order (no further queries)."""
    return [to_version(r) for r in rows]


def to_model(r: Any, project: str) -> RegisteredModel:
    """A row of :func:`model_columns` as a RegisteredModel."""
    return RegisteredModel(
        name=r.name,
        description=r.description,
        require_approval=bool(r.require_approval),
        tags=dict(_from_json(r.tags_json)),
        aliases={a: int(v) for a, v in sorted(_from_json(r.aliases_json))},
        latest_version=r.latest_version,
        created_at=r.created_at,
        updated_at=r.updated_at,
        project=project,
    )


def hydrate_models(conn: Connection, rows: Sequence[Any], project: str) -> list[RegisteredModel]:
    """Registered models from rows of :func:`model_columns`, in order."""
    return [to_model(r, project) for r in rows]

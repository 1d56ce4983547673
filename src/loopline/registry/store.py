"""SQL for registered models, versions, aliases and reviews.

One class, :class:`RegistryStore`, over a :class:`~loopline.store.metadata.Database`,
in SQLAlchemy Core, identical on SQLite and PostgreSQL. Input validation happens in
:mod:`loopline.registry.service`; this layer keeps the invariants that need the
database:

* version numbers grow per model and are never reused (deleted versions keep their row);
* a version's files are copied into its own manifest root in the transaction that
  creates it, so they are immutable whatever happens to the source;
* an alias always points at a live version: moving an alias and deleting a version
  both lock the model's row first (PostgreSQL; SQLite serialises writers), so a
  concurrent move and delete cannot interleave;
* a protected alias only points at approved versions;
* every change appends its event in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.errors import AlreadyExistsError, InvalidStateError, NotFoundError
from loopline.events import emit
from loopline.registry import _rows
from loopline.registry._aliases import AliasesAndReviews, version_entity
from loopline.registry._filter import compare, compile_clauses, parse_filter, parse_order_by
from loopline.registry.entities import (
    ModelVersion,
    RegisteredModel,
    ReviewStatus,
)
from loopline.store.metadata.schema import (
    artifacts,
    lineage,
    model_alias_history,
    model_aliases,
    model_reviews,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["NewVersion", "RegistryStore"]

PENDING = ReviewStatus.PENDING.value


class NewVersion:
    """What a new version is made of (the service fills it in)."""

    __slots__ = (
        "description",
        "files",
        "flavor",
        "logged_model_id",
        "run_id",
        "signature",
        "source",
        "tags",
    )

    def __init__(
        self,
        *,
        source: str,
        files: list[tuple[str, str, int]],
        run_id: str | None = None,
        logged_model_id: str | None = None,
        flavor: str = "",
        signature: dict[str, Any] | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.files = files
        self.run_id = run_id
        self.logged_model_id = logged_model_id
        self.flavor = flavor
        self.signature = signature
        self.description = description
        self.tags = dict(tags or {})


class RegistryStore(AliasesAndReviews):
    """Registered models, versions, aliases, reviews and their events, in SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: sa.Table) -> Any:
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            return insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- registered models ---------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        project: str,
        description: str,
        tags: dict[str, str],
        require_approval: bool,
        actor: str,
    ) -> RegisteredModel:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            if _rows.model_row(conn, pid, name) is not None:
                raise AlreadyExistsError(
                    f"registered model {name!r} already exists",
                    hint="register a new version of it, or choose another name",
                )
            row = self._insert_model(conn, pid, name, description, require_approval, actor)
            if row is None:
                raise AlreadyExistsError(f"registered model {name!r} already exists")
            self._put_tags(conn, registered_model_tags, "model_id", row.id, tags)
            return self._model_entity(conn, row.id, project)

    def _insert_model(
        self,
        conn: Connection,
        pid: int,
        name: str,
        description: str,
        require_approval: bool,
        actor: str,
    ) -> sa.Row[Any] | None:
        """Insert a model unless one with the name exists (then None); emits model.created."""
        now = now_ms()
        stmt = (
            self._insert(registered_models)
            .values(
                project_id=pid,
                name=name,
                description=description,
                require_approval=require_approval,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["project_id", "name"])
            .returning(*registered_models.c)
        )
        row = conn.execute(stmt).first()
        if row is not None:
            payload = {"model": name, "require_approval": require_approval}
            emit(conn, "model.created", "registered_model", name, actor, payload, pid)
        return row

    def _model_entity(self, conn: Connection, model_id: int, project: str) -> RegisteredModel:
        row = conn.execute(
            sa.select(*_rows.model_columns(conn.dialect.name)).where(
                registered_models.c.id == model_id
            )
        ).one()
        return _rows.to_model(row, project)

    def get_model(self, name: str, *, project: str) -> RegisteredModel:
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            row = conn.execute(
                _rows.statements(conn.dialect.name).model, {"pid": pid, "name": name}
            ).first()
            if row is None:
                _rows.require_model(conn, pid, name)
            return _rows.to_model(row, project)

    def update_model(
        self,
        name: str,
        *,
        project: str,
        actor: str,
        description: str | None = None,
        require_approval: bool | None = None,
        new_name: str | None = None,
    ) -> RegisteredModel:
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if require_approval is not None:
            values["require_approval"] = require_approval
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            row = _rows.require_model(conn, pid, name, lock=True)
            if new_name is not None and new_name != name:
                if _rows.model_row(conn, pid, new_name) is not None:
                    raise AlreadyExistsError(f"registered model {new_name!r} already exists")
                values["name"] = new_name
            if values:
                values["updated_at"] = now_ms()
                conn.execute(
                    sa.update(registered_models)
                    .where(registered_models.c.id == row.id)
                    .values(**values)
                )
                if "name" in values:
                    payload: dict[str, Any] = {"model": new_name, "from_name": name}
                    emit(
                        conn,
                        "model.renamed",
                        "registered_model",
                        str(new_name),
                        actor,
                        payload,
                        pid,
                    )
                changed = {
                    k: v for k, v in values.items() if k in ("description", "require_approval")
                }
                if changed:
                    payload = {"model": values.get("name", name), **changed}
                    emit(
                        conn,
                        "model.updated",
                        "registered_model",
                        payload["model"],
                        actor,
                        payload,
                        pid,
                    )
            return self._model_entity(conn, row.id, project)

    def delete_model(self, name: str, *, project: str, actor: str, force: bool) -> None:
        """Remove a model with its versions, aliases, tags and files (its name is free again)."""
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            row = _rows.require_model(conn, pid, name, lock=True)
            held = list(
                conn.execute(
                    sa.select(model_aliases.c.alias).where(model_aliases.c.model_id == row.id)
                ).scalars()
            )
            if held and not force:
                raise InvalidStateError(
                    f"model {name!r} still has aliases ({', '.join(sorted(held))})",
                    hint="delete the aliases first, or force the deletion (--force)",
                )
            ids = list(
                conn.execute(
                    sa.select(model_versions.c.id).where(model_versions.c.model_id == row.id)
                ).scalars()
            )
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.model_id == row.id))
            conn.execute(
                sa.delete(model_alias_history).where(model_alias_history.c.model_id == row.id)
            )
            if ids:
                conn.execute(sa.delete(model_reviews).where(model_reviews.c.version_id.in_(ids)))
                conn.execute(
                    sa.delete(model_version_tags).where(model_version_tags.c.version_id.in_(ids))
                )
                roots = [f"model_versions/{i}" for i in ids]
                conn.execute(sa.delete(artifacts).where(artifacts.c.root.in_(roots)))
                keys = [str(i) for i in ids]
                conn.execute(
                    sa.delete(lineage).where(
                        sa.or_(
                            sa.and_(
                                lineage.c.dst_type == "model_version", lineage.c.dst_id.in_(keys)
                            ),
                            sa.and_(
                                lineage.c.src_type == "model_version", lineage.c.src_id.in_(keys)
                            ),
                        )
                    )
                )
                conn.execute(sa.delete(model_versions).where(model_versions.c.id.in_(ids)))
            conn.execute(
                sa.delete(registered_model_tags).where(registered_model_tags.c.model_id == row.id)
            )
            conn.execute(sa.delete(registered_models).where(registered_models.c.id == row.id))
            payload = {"model": name, "versions": len(ids), "aliases": sorted(held)}
            emit(conn, "model.deleted", "registered_model", name, actor, payload, pid)

    def set_model_tag(
        self, name: str, key: str, value: str | None, *, project: str, actor: str
    ) -> None:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            row = _rows.require_model(conn, pid, name)
            self._set_tag(conn, registered_model_tags, "model_id", row.id, key, value)
            kind = "model.tag_set" if value is not None else "model.tag_deleted"
            payload = {"model": name, "key": key, "value": value}
            emit(conn, kind, "registered_model", name, actor, payload, pid)

    def search_models(
        self,
        *,
        project: str,
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int,
        offset: int,
    ) -> list[RegisteredModel]:
        columns = {
            "name": registered_models.c.name,
            "description": registered_models.c.description,
        }

        def tag(key: str, op: str, value: Any) -> sa.ColumnElement[bool]:
            return sa.exists().where(
                registered_model_tags.c.model_id == registered_models.c.id,
                registered_model_tags.c.key == key,
                compare(registered_model_tags.c.value, op, value),
            )

        where = compile_clauses(parse_filter(filter_string), columns, tag)
        order = parse_order_by(
            order_by,
            {
                "name": registered_models.c.name,
                "creation_timestamp": registered_models.c.created_at,
                "created_at": registered_models.c.created_at,
                "last_updated_timestamp": registered_models.c.updated_at,
                "updated_at": registered_models.c.updated_at,
            },
        )
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            rows = conn.execute(
                sa.select(*_rows.model_columns(conn.dialect.name))
                .where(
                    registered_models.c.project_id == pid,
                    registered_models.c.deleted_at.is_(None),
                    *where,
                )
                .order_by(*order, registered_models.c.name)
                .limit(limit)
                .offset(offset)
            ).all()
            return _rows.hydrate_models(conn, rows, project)

    # -- versions --------------------------------------------------------------------------
    def create_version(
        self, name: str, new: NewVersion, *, project: str, actor: str, create_model: bool = True
    ) -> ModelVersion:
        now = now_ms()
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.model_row(conn, pid, name, lock=True)
            if model is None:
                if not create_model:
                    _rows.require_model(conn, pid, name)
                self._insert_model(conn, pid, name, "", False, actor)
                model = _rows.require_model(conn, pid, name, lock=True)
            number = (
                conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.model_id == model.id
                    )
                ).scalar()
                or 0
            ) + 1
            review = PENDING if model.require_approval else ReviewStatus.NONE.value
            version_id = conn.execute(
                sa.insert(model_versions)
                .values(
                    model_id=model.id,
                    version=number,
                    source=new.source,
                    run_id=new.run_id,
                    logged_model_id=new.logged_model_id,
                    flavor=new.flavor,
                    signature_json=(
                        orjson.dumps(new.signature).decode() if new.signature is not None else None
                    ),
                    review_status=review,
                    description=new.description,
                    created_at=now,
                    created_by=actor,
                    updated_at=now,
                )
                .returning(model_versions.c.id)
            ).scalar_one()
            root = f"model_versions/{version_id}"
            if new.files:
                conn.execute(
                    sa.insert(artifacts),
                    [
                        {"root": root, "path": p, "digest": d, "size": s, "created_at": now}
                        for p, d, s in new.files
                    ],
                )
            self._put_tags(conn, model_version_tags, "version_id", version_id, new.tags)
            if new.run_id:
                self._edge(conn, ("run", new.run_id), ("model_version", str(version_id)), "output")
            conn.execute(
                sa.update(registered_models)
                .where(registered_models.c.id == model.id)
                .values(updated_at=now)
            )
            ref = version_entity(name, number)
            payload: dict[str, Any] = {
                "model": name,
                "version": number,
                "source": new.source,
                "run_id": new.run_id,
                "review_status": review,
            }
            emit(conn, "model.version_created", "model_version", ref, actor, payload, pid)
            if review == PENDING:
                self._review_row(conn, version_id, "requested", actor, "requested on registration")
                payload = {"model": name, "version": number, "reviewer": actor, "comment": ""}
                emit(conn, "model.review_requested", "model_version", ref, actor, payload, pid)
            return _rows.hydrate_versions(conn, [_rows.require_version(conn, model, number)])[0]

    def _edge(
        self, conn: Connection, src: tuple[str, str], dst: tuple[str, str], relation: str
    ) -> None:
        conn.execute(
            self._insert(lineage)
            .values(
                src_type=src[0],
                src_id=src[1],
                dst_type=dst[0],
                dst_id=dst[1],
                relation=relation,
                created_at=now_ms(),
            )
            .on_conflict_do_nothing(
                index_elements=["src_type", "src_id", "dst_type", "dst_id", "relation"]
            )
        )

    def get_version(self, name: str, version: int, *, project: str) -> ModelVersion:
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            row = conn.execute(
                _rows.statements(conn.dialect.name).by_number,
                {"pid": pid, "name": name, "version": version},
            ).first()
            if row is None:  # say which of the two is missing
                _rows.require_version(conn, _rows.require_model(conn, pid, name), version)
            return _rows.to_version(row)

    def latest_version(self, name: str, *, project: str) -> ModelVersion:
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            row = conn.execute(
                _rows.statements(conn.dialect.name).latest, {"pid": pid, "name": name}
            ).first()
            if row is None:
                _rows.require_model(conn, pid, name)
                raise NotFoundError(
                    f"model {name!r} has no versions yet",
                    hint=f"register one: `loopline models register URI --name {name}`",
                )
            return _rows.to_version(row)

    def version_by_alias(self, name: str, alias: str, *, project: str) -> ModelVersion:
        """Alias resolution: one prepared query (the version with its tags and aliases)."""
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            row = conn.execute(
                _rows.statements(conn.dialect.name).by_alias,
                {"pid": pid, "name": name, "alias": alias},
            ).first()
            if row is None:
                _rows.require_model(conn, pid, name)
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r}",
                    hint=f"set it: `loopline models alias set {name} {alias} VERSION`",
                )
            return _rows.to_version(row)

    def version_by_digest(self, name: str, prefix: str, *, project: str) -> ModelVersion:
        """The newest version holding a file whose digest starts with ``prefix``."""
        with self.db.read() as conn:
            model = _rows.require_model(conn, _rows.project_id(conn, project), name)
            roots = sa.literal("model_versions/") + sa.cast(model_versions.c.id, sa.String)
            row = conn.execute(
                _rows.select_versions(conn.dialect.name)
                .where(
                    model_versions.c.model_id == model.id,
                    model_versions.c.deleted_at.is_(None),
                    sa.exists().where(
                        artifacts.c.root == roots,
                        artifacts.c.digest.like(f"blake3:{prefix}%"),
                    ),
                )
                .order_by(model_versions.c.version.desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFoundError(f"no version of {name!r} holds a file with digest {prefix}...")
            return _rows.hydrate_versions(conn, [row])[0]

    def search_versions(
        self,
        *,
        project: str,
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int,
        offset: int,
        name: str | None = None,
    ) -> list[ModelVersion]:
        oldest_first = [o.strip().lower() for o in order_by or ["?"]] == ["version_number asc"]
        if name is not None and not filter_string and offset == 0 and oldest_first:
            return self._versions_of(name, project=project, limit=limit)
        columns = {
            "name": registered_models.c.name,
            "version_number": model_versions.c.version,
            "version": model_versions.c.version,
            "run_id": model_versions.c.run_id,
            "source": model_versions.c.source,
            "source_path": model_versions.c.source,
            "model_id": model_versions.c.logged_model_id,
            "flavor": model_versions.c.flavor,
            "review_status": model_versions.c.review_status,
        }

        def tag(key: str, op: str, value: Any) -> sa.ColumnElement[bool]:
            return sa.exists().where(
                model_version_tags.c.version_id == model_versions.c.id,
                model_version_tags.c.key == key,
                compare(model_version_tags.c.value, op, value),
            )

        numeric = frozenset({"version_number", "version"})
        where = compile_clauses(parse_filter(filter_string), columns, tag, numeric=numeric)
        order = parse_order_by(
            order_by,
            {
                "name": registered_models.c.name,
                "version_number": model_versions.c.version,
                "version": model_versions.c.version,
                "creation_timestamp": model_versions.c.created_at,
                "created_at": model_versions.c.created_at,
                "last_updated_timestamp": model_versions.c.updated_at,
                "updated_at": model_versions.c.updated_at,
            },
        )
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            if name is not None:
                where.append(registered_models.c.name == name)
            rows = conn.execute(
                _rows.select_versions(conn.dialect.name)
                .where(
                    registered_models.c.project_id == pid,
                    registered_models.c.deleted_at.is_(None),
                    model_versions.c.deleted_at.is_(None),
                    *where,
                )
                .order_by(*order, registered_models.c.name, model_versions.c.version.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            if not rows and name is not None:  # none, or no such model?
                _rows.require_model(conn, pid, name)
            return _rows.hydrate_versions(conn, rows)

    def _versions_of(self, name: str, *, project: str, limit: int) -> list[ModelVersion]:
        """A model's live versions, oldest first: the prepared statement behind list_versions."""
        with self.db.read() as conn:
            pid = _rows.project_id(conn, project)
            rows = conn.execute(
                _rows.statements(conn.dialect.name).of_model,
                {"pid": pid, "name": name, "limit": limit},
            ).all()
            if not rows:
                _rows.require_model(conn, pid, name)
            return _rows.hydrate_versions(conn, rows)

    def update_version(
        self, name: str, version: int, *, description: str, project: str, actor: str
    ) -> ModelVersion:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.require_model(conn, pid, name)
            row = _rows.require_version(conn, model, version)
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.id == row.id)
                .values(description=description, updated_at=now_ms())
            )
            payload = {"model": name, "version": version, "description": description}
            ref = version_entity(name, version)
            emit(conn, "model.version_updated", "model_version", ref, actor, payload, pid)
            return _rows.hydrate_versions(conn, [_rows.require_version(conn, model, version)])[0]

    def set_version_tag(
        self, name: str, version: int, key: str, value: str | None, *, project: str, actor: str
    ) -> None:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            row = _rows.require_version(conn, _rows.require_model(conn, pid, name), version)
            self._set_tag(conn, model_version_tags, "version_id", row.id, key, value)
            kind = "model.version_tag_set" if value is not None else "model.version_tag_deleted"
            payload = {"model": name, "version": version, "key": key, "value": value}
            emit(conn, kind, "model_version", version_entity(name, version), actor, payload, pid)

    def delete_version(
        self, name: str, version: int, *, project: str, actor: str, force: bool
    ) -> None:
        """Delete a version; refused while an alias points at it, unless ``force``
        (which deletes those aliases, each move kept in the history)."""
        now = now_ms()
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.require_model(conn, pid, name, lock=True)
            row = _rows.require_version(conn, model, version)
            held = list(
                conn.execute(
                    sa.select(model_aliases.c.alias)
                    .where(model_aliases.c.version_id == row.id)
                    .order_by(model_aliases.c.alias)
                ).scalars()
            )
            if held and not force:
                raise InvalidStateError(
                    f"cannot delete {name}@{version}: alias "
                    f"{', '.join(held)} point{'s' if len(held) == 1 else ''} at it",
                    hint=(
                        f"move the alias first (`loopline models alias set {name} {held[0]} "
                        "VERSION`), or force the deletion, which deletes the alias"
                    ),
                )
            for alias in held:
                self._remove_alias(conn, model, alias, version, actor, "version deleted", pid)
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.id == row.id)
                .values(deleted_at=now, updated_at=now)
            )
            conn.execute(
                sa.delete(model_version_tags).where(model_version_tags.c.version_id == row.id)
            )
            conn.execute(sa.delete(artifacts).where(artifacts.c.root == f"model_versions/{row.id}"))
            payload = {"model": name, "version": version, "aliases_deleted": held}
            ref = version_entity(name, version)
            emit(conn, "model.version_deleted", "model_version", ref, actor, payload, pid)

    def version_files(
        self, name: str, version: int, *, project: str
    ) -> tuple[ModelVersion, list[tuple[str, str, int]]]:
        with self.db.read() as conn:
            model = _rows.require_model(conn, _rows.project_id(conn, project), name)
            row = _rows.require_version(conn, model, version)
            files = conn.execute(
                sa.select(artifacts.c.path, artifacts.c.digest, artifacts.c.size)
                .where(artifacts.c.root == f"model_versions/{row.id}")
                .order_by(artifacts.c.path)
            ).all()
            return _rows.hydrate_versions(conn, [row])[0], [(p, d, s) for p, d, s in files]

    # -- tags -------------------------------------------------------------------------------
    def _put_tags(
        self, conn: Connection, table: sa.Table, owner: str, owner_id: int, tags: dict[str, str]
    ) -> None:
        if tags:
            conn.execute(
                sa.insert(table), [{owner: owner_id, "key": k, "value": v} for k, v in tags.items()]
            )

    def _set_tag(
        self,
        conn: Connection,
        table: sa.Table,
        owner: str,
        owner_id: int,
        key: str,
        value: str | None,
    ) -> None:
        conn.execute(sa.delete(table).where(table.c[owner] == owner_id, table.c.key == key))
        if value is not None:
            conn.execute(sa.insert(table).values({owner: owner_id, "key": key, "value": value}))

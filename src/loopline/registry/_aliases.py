"""Aliases and reviews: the part of :class:`~loopline.registry.store.RegistryStore` that moves
aliases (atomically, with history) and records review requests and decisions.

Each write locks the model's row first (:func:`loopline.registry._rows.model_row`), so on
PostgreSQL an alias move and a version deletion on one model never interleave; SQLite
serialises writers with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopline.errors import InvalidStateError, NotFoundError
from loopline.events import emit
from loopline.registry import _rows
from loopline.registry.entities import Alias, AliasChange, Review, ReviewStatus
from loopline.store.metadata.schema import (
    model_alias_history,
    model_aliases,
    model_reviews,
    model_versions,
)
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["AliasesAndReviews", "version_entity"]

PENDING = ReviewStatus.PENDING.value
APPROVED = ReviewStatus.APPROVED.value
REJECTED = ReviewStatus.REJECTED.value


def version_entity(model: str, version: int) -> str:
    """The entity id of a version in events: ``NAME@VERSION``."""
    return f"{model}@{version}"


class AliasesAndReviews:
    db: Database

    # -- aliases --------------------------------------------------------------------------
    def set_alias_in(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int,
        *,
        project: str,
        actor: str,
        protect: bool | None,
        reason: str = "",
    ) -> Alias:
        """Point ``alias`` at ``version`` in the caller's transaction, keeping its history
        and emitting the event; a protected alias only takes an approved version."""
        now = now_ms()
        pid = _rows.project_id(conn, project)
        model = _rows.require_model(conn, pid, name, lock=True)
        target = _rows.require_version(conn, model, version)
        current = conn.execute(
            sa.select(model_aliases, model_versions.c.version.label("number"))
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
        ).first()
        protected = protect if protect is not None else bool(current and current.protected)
        if protected and target.review_status != APPROVED:
            raise InvalidStateError(
                f"alias {alias!r} of {name!r} is protected: it only points at approved "
                f"versions, and version {version} is {target.review_status}",
                hint=f"approve it first: `loopline models approve {name}@{version}`",
            )
        same = current is not None and current.version_id == target.id
        if same and current is not None and bool(current.protected) == protected:
            return _alias(name, alias, version, protected, current.updated_at, current.updated_by)
        values = {
            "version_id": target.id,
            "protected": protected,
            "updated_at": now,
            "updated_by": actor,
        }
        if current is None:
            conn.execute(sa.insert(model_aliases).values(model_id=model.id, alias=alias, **values))
        else:
            conn.execute(
                sa.update(model_aliases)
                .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
                .values(**values)
            )
        from_version = None if current is None else current.number
        payload: dict[str, Any] = {
            "model": name,
            "alias": alias,
            "from_version": from_version,
            "to_version": version,
            "protected": protected,
        }
        entity = f"{name}@{alias}"
        if from_version == version:  # only the protection changed
            emit(
                conn,
                "model.alias_protection_changed",
                "model_alias",
                entity,
                actor,
                payload,
                pid,
            )
        else:
            self._history(conn, model.id, alias, from_version, version, actor, reason)
            emit(conn, "model.alias_moved", "model_alias", entity, actor, payload, pid)
        return _alias(name, alias, version, protected, now, actor)

    def delete_alias(self, name: str, alias: str, *, project: str, actor: str) -> None:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.require_model(conn, pid, name, lock=True)
            number = conn.execute(
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
            ).scalar()
            if number is None:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")
            self._remove_alias(conn, model, alias, number, actor, "", pid)

    def _remove_alias(
        self,
        conn: Connection,
        model: sa.Row[Any],
        alias: str,
        from_version: int,
        actor: str,
        reason: str,
        pid: int,
    ) -> None:
        conn.execute(
            sa.delete(model_aliases).where(
                model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
            )
        )
        self._history(conn, model.id, alias, from_version, None, actor, reason)
        payload = {
            "model": model.name,
            "alias": alias,
            "from_version": from_version,
            "to_version": None,
            "reason": reason,
        }
        entity = f"{model.name}@{alias}"
        emit(conn, "model.alias_deleted", "model_alias", entity, actor, payload, pid)

    def _history(
        self,
        conn: Connection,
        model_id: int,
        alias: str,
        from_version: int | None,
        to_version: int | None,
        actor: str,
        reason: str,
    ) -> None:
        conn.execute(
            sa.insert(model_alias_history).values(
                model_id=model_id,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                reason=reason,
                created_at=now_ms(),
            )
        )

    def alias_history(self, name: str, alias: str | None, *, project: str) -> list[AliasChange]:
        with self.db.read() as conn:
            model = _rows.require_model(conn, _rows.project_id(conn, project), name)
            clauses: list[Any] = [model_alias_history.c.model_id == model.id]
            if alias is not None:
                clauses.append(model_alias_history.c.alias == alias)
            rows = conn.execute(
                sa.select(model_alias_history).where(*clauses).order_by(model_alias_history.c.id)
            ).all()
        return [
            AliasChange(
                model=name,
                alias=r.alias,
                from_version=r.from_version,
                to_version=r.to_version,
                actor=r.actor,
                reason=r.reason,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def aliases(self, name: str, *, project: str) -> list[Alias]:
        with self.db.read() as conn:
            model = _rows.require_model(conn, _rows.project_id(conn, project), name)
            rows = conn.execute(
                sa.select(model_aliases, model_versions.c.version.label("number"))
                .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
                .where(model_aliases.c.model_id == model.id)
                .order_by(model_aliases.c.alias)
            ).all()
        return [
            _alias(name, r.alias, r.number, r.protected, r.updated_at, r.updated_by) for r in rows
        ]

    # -- reviews --------------------------------------------------------------------------
    def request_review(
        self, name: str, version: int, *, comment: str, project: str, actor: str
    ) -> Review:
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.require_model(conn, pid, name, lock=True)
            row = _rows.require_version(conn, model, version)
            if row.review_status == PENDING:
                raise InvalidStateError(f"{name}@{version} is already pending review")
            if row.review_status == APPROVED:
                protected = (
                    conn.execute(
                        sa.select(model_aliases.c.alias).where(
                            model_aliases.c.version_id == row.id, model_aliases.c.protected
                        )
                    )
                    .scalars()
                    .all()
                )
                if protected:
                    raise InvalidStateError(
                        f"{name}@{version} is what protected alias {', '.join(protected)} "
                        "points at: it must stay approved",
                        hint="move the protected alias to another approved version first",
                    )
            self._set_review_status(conn, row.id, PENDING)
            created = self._review_row(conn, row.id, "requested", actor, comment)
            payload = {"model": name, "version": version, "reviewer": actor, "comment": comment}
            ref = version_entity(name, version)
            emit(conn, "model.review_requested", "model_version", ref, actor, payload, pid)
            return Review(name, version, "requested", actor, comment, created)

    def decide(
        self, name: str, version: int, decision: str, *, comment: str, project: str, actor: str
    ) -> Review:
        """Approve or reject a version (pending review, or never reviewed)."""
        with self.db.write() as conn:
            pid = _rows.project_id(conn, project)
            model = _rows.require_model(conn, pid, name, lock=True)
            row = _rows.require_version(conn, model, version)
            if row.review_status in (APPROVED, REJECTED):
                raise InvalidStateError(
                    f"{name}@{version} is already {row.review_status}",
                    hint=f"request a new review first: `loopline models request-review {name}@{version}`",
                )
            status = APPROVED if decision == "approved" else REJECTED
            self._set_review_status(conn, row.id, status)
            created = self._review_row(conn, row.id, decision, actor, comment)
            payload = {
                "model": name,
                "version": version,
                "decision": decision,
                "reviewer": actor,
                "comment": comment,
            }
            ref = version_entity(name, version)
            emit(conn, "model.review_decided", "model_version", ref, actor, payload, pid)
            return Review(name, version, decision, actor, comment, created)

    def reviews(self, name: str, version: int, *, project: str) -> list[Review]:
        with self.db.read() as conn:
            model = _rows.require_model(conn, _rows.project_id(conn, project), name)
            row = _rows.require_version(conn, model, version)
            found = conn.execute(
                sa.select(model_reviews)
                .where(model_reviews.c.version_id == row.id)
                .order_by(model_reviews.c.id)
            ).all()
        return [
            Review(name, version, r.decision, r.reviewer, r.comment, r.created_at) for r in found
        ]

    def _set_review_status(self, conn: Connection, version_id: int, status: str) -> None:
        conn.execute(
            sa.update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(review_status=status, updated_at=now_ms())
        )

    def _review_row(
        self, conn: Connection, version_id: int, decision: str, actor: str, comment: str
    ) -> int:
        created = now_ms()
        conn.execute(
            sa.insert(model_reviews).values(
                version_id=version_id,
                decision=decision,
                reviewer=actor,
                comment=comment,
                created_at=created,
            )
        )
        return created


def _alias(
    model: str, alias: str, version: int, protected: Any, updated_at: int, updated_by: str
) -> Alias:
    return Alias(model, alias, version, bool(protected), updated_at, updated_by)

"""Working together: comments with @mentions, the notifications feed, the audit log.

Notifications are not stored twice: they are read from the event log (comments
emit ``comment.created`` naming who they mention; the registry emits
``model.review_requested``; monitors emit ``*alert*`` events), filtered for one
user, with a per-user cursor marking how far they have read.

>>> import tempfile
>>> from loopline.store.metadata import Database
>>> from loopline.auth.store import AuthStore
>>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/m.db")
>>> _ = AuthStore(db).create_user("bo", "a long password")
>>> c = CollabStore(db).add_comment("run", "r1", "looks good @bo", author="ana", project="default")
>>> c["mentions"]
['bo']
>>> [n["type"] for n in CollabStore(db).notifications("bo", roles={})]
['mention']
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.auth.roles import Role
from loopline.auth.store import AuthStore, now_ms
from loopline.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from loopline.events import emit
from loopline.store.metadata.schema import events, projects
from loopline.store.metadata.schema_collab import (
    audit_log,
    comments,
    notification_cursors,
    users,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.store.metadata import Database

__all__ = [
    "COMMENT_TARGETS",
    "MAX_COMMENT_CHARS",
    "NOTIFYING_KINDS",
    "AuditEntry",
    "CollabStore",
    "mentions_in",
    "notification_type",
]

COMMENT_TARGETS = ("run", "model_version", "dataset_version")
MAX_COMMENT_CHARS = 20_000
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9._-]{0,63})")

AuditEntry = dict[str, Any]

NOTIFYING_KINDS = sa.or_(
    events.c.kind.in_(("comment.created", "model.review_requested")),
    events.c.kind.contains("alert", autoescape=True),  # monitor.alert and any future alerts
)
"""The events a notification can come from (a SQL condition on the event log)."""


def mentions_in(text: str) -> list[str]:
    """The names ``@mentioned`` in Markdown text, in order, without repeats.

    >>> mentions_in("cc @ana and @bo.k, not a@mail.com; @ana again")
    ['ana', 'bo.k']
    """
    seen: dict[str, None] = {}
    for name in _MENTION.findall(text):
        seen.setdefault(name.rstrip("."), None)
    return list(seen)


def _comment_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "author": row.author,
        "body": row.body,
        "mentions": orjson.loads(row.mentions),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class CollabStore:
    """Comments, notifications and the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- comments --------------------------------------------------------------------
    def add_comment(
        self, entity_type: str, entity_id: str, body: str, *, author: str, project: str
    ) -> dict[str, Any]:
        if entity_type not in COMMENT_TARGETS:
            raise InvalidArgumentError(
                f"cannot comment on {entity_type!r}",
                hint=f"comment on one of {', '.join(COMMENT_TARGETS)}",
            )
        if not body.strip() or len(body) > MAX_COMMENT_CHARS:
            raise InvalidArgumentError(
                f"a comment has 1 to {MAX_COMMENT_CHARS} characters, got {len(body)}"
            )
        if not entity_id or len(entity_id) > 300:
            raise InvalidArgumentError("entity_id must have 1 to 300 characters")
        now = now_ms()
        with self.db.write() as conn:
            pid = AuthStore.project_id(conn, project)
            named = mentions_in(body)
            known = (
                set(conn.execute(sa.select(users.c.name).where(users.c.name.in_(named))).scalars())
                if named
                else set()
            )
            mentioned = [n for n in named if n in known]
            cid = conn.execute(
                sa.insert(comments).returning(comments.c.id),
                {
                    "project_id": pid,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "author": author,
                    "body": body,
                    "mentions": orjson.dumps(mentioned).decode(),
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            payload = {
                "comment_id": cid,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "mentions": mentioned,
                "excerpt": body[:200],
            }
            emit(conn, "comment.created", entity_type, entity_id, author, payload, pid)
            row = conn.execute(sa.select(comments).where(comments.c.id == cid)).one()
        return _comment_dict(row)

    def comments(self, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(comments)
                .where(
                    comments.c.entity_type == entity_type,
                    comments.c.entity_id == entity_id,
                    comments.c.deleted_at.is_(None),
                )
                .order_by(comments.c.id)
            ).all()
        return [_comment_dict(r) for r in rows]

    def comment_project(self, comment_id: int) -> str:
        with self.db.read() as conn:
            name = conn.execute(
                sa.select(projects.c.name)
                .join(comments, comments.c.project_id == projects.c.id)
                .where(comments.c.id == comment_id, comments.c.deleted_at.is_(None))
            ).scalar()
        if name is None:
            raise NotFoundError(f"comment {comment_id} does not exist")
        return str(name)

    def delete_comment(self, comment_id: int, *, actor: str, moderator: bool) -> None:
        """Authors delete their own comments; ``moderator`` (a project admin) any."""
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(comments).where(
                    comments.c.id == comment_id, comments.c.deleted_at.is_(None)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"comment {comment_id} does not exist")
            if row.author != actor and not moderator:
                raise PermissionDeniedError(
                    "only a comment's author or a project admin may delete it"
                )
            conn.execute(
                sa.update(comments).where(comments.c.id == comment_id).values(deleted_at=now_ms())
            )
            emit(
                conn,
                "comment.deleted",
                row.entity_type,
                row.entity_id,
                actor,
                {"comment_id": comment_id},
                row.project_id,
            )

    # -- notifications ---------------------------------------------------------------
    def notifications(
        self, user: str, *, roles: dict[str, Role], is_admin: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest notifications for ``user``, newest first, each marked read or not."""
        limit = max(1, min(limit, 500))
        with self.db.read() as conn:
            uid = conn.execute(sa.select(users.c.id).where(users.c.name == user)).scalar()
            cursor = (
                conn.execute(
                    sa.select(notification_cursors.c.last_read_id).where(
                        notification_cursors.c.user_id == uid
                    )
                ).scalar()
                or 0
            )
            names = {r.id: r.name for r in conn.execute(sa.select(projects.c.id, projects.c.name))}
            rows = conn.execute(
                sa.select(events)
                .where(NOTIFYING_KINDS, events.c.actor != user)
                .order_by(events.c.id.desc())
                .limit(limit * 20)
            ).all()
        out: list[dict[str, Any]] = []
        for row in rows:
            payload = orjson.loads(row.payload)
            project = names.get(row.project_id, "")
            role = Role.SERVER_ADMIN if is_admin else roles.get(project, Role.OPEN)
            kind = notification_type(row.kind, payload, user, role)
            if kind is None:
                continue
            out.append(
                {
                    "id": row.id,
                    "type": kind,
                    "event": row.kind,
                    "project": project,
                    "entity_type": row.entity_type,
                    "entity_id": row.entity_id,
                    "actor": row.actor,
                    "payload": payload,
                    "created_at": row.created_at,
                    "read": row.id <= cursor,
                }
            )
            if len(out) >= limit:
                break
        return out

    def mark_read(self, user: str, up_to_id: int) -> None:
        with self.db.write() as conn:
            uid = conn.execute(sa.select(users.c.id).where(users.c.name == user)).scalar()
            if uid is None:
                raise NotFoundError(f"user {user!r} does not exist")
            current = conn.execute(
                sa.select(notification_cursors.c.last_read_id).where(
                    notification_cursors.c.user_id == uid
                )
            ).scalar()
            if current is None:
                conn.execute(
                    sa.insert(notification_cursors), {"user_id": uid, "last_read_id": up_to_id}
                )
            elif up_to_id > current:
                conn.execute(
                    sa.update(notification_cursors)
                    .where(notification_cursors.c.user_id == uid)
                    .values(last_read_id=up_to_id)
                )

    # -- audit -----------------------------------------------------------------------
    def record(self, entry: AuditEntry) -> None:
        row = {
            "created_at": entry.get("created_at") or now_ms(),
            "actor": str(entry.get("actor", ""))[:256],
            "authenticated": bool(entry.get("authenticated", False)),
            "method": str(entry.get("method", ""))[:8],
            "path": str(entry.get("path", ""))[:2000],
            "status": int(entry.get("status", 0)),
            "project": str(entry.get("project", ""))[:256],
            "origin": str(entry.get("origin", ""))[:64],
            "user_agent": str(entry.get("user_agent", ""))[:512],
        }
        with self.db.write() as conn:
            conn.execute(sa.insert(audit_log), row)

    def audit(
        self,
        *,
        actor: str | None = None,
        project: str | None = None,
        since: int | None = None,
        until: int | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Audit entries in id order (oldest first) matching every filter given."""
        clauses: list[Any] = [audit_log.c.id > after_id]
        if actor:
            clauses.append(audit_log.c.actor == actor)
        if project:
            clauses.append(audit_log.c.project == project)
        if since is not None:
            clauses.append(audit_log.c.created_at >= since)
        if until is not None:
            clauses.append(audit_log.c.created_at < until)
        limit = max(1, min(limit, 10_000))
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(audit_log).where(*clauses).order_by(audit_log.c.id).limit(limit)
            ).all()
        return [{str(k): v for k, v in r._mapping.items()} for r in rows]

    def iter_audit(self, **filters: Any) -> Iterator[AuditEntry]:
        """Every matching entry, fetched page by page (for exports of any size)."""
        after = 0
        while True:
            page = self.audit(after_id=after, limit=5000, **filters)
            yield from page
            if len(page) < 5000:
                return
            after = int(page[-1]["id"])


def notification_type(
    kind: str, payload: dict[str, Any], user: str | None, role: Role
) -> str | None:
    """What an event is to ``user`` holding ``role`` in its project (None: nothing).

    ``user=None`` asks for a project's feed: every mention counts.

    >>> notification_type("comment.created", {"mentions": ["bo"]}, "bo", Role.VIEWER)
    'mention'
    >>> notification_type("model.review_requested", {}, "ana", Role.EDITOR) is None
    True
    >>> notification_type("monitor.alert", {}, None, Role.ADMIN)
    'alert'
    """
    if kind == "comment.created":
        named = payload.get("mentions") or ()
        return "mention" if (user in named if user is not None else named) else None
    if kind == "model.review_requested":
        return "approval_requested" if role >= Role.MAINTAINER else None
    return "alert" if role >= Role.VIEWER else None

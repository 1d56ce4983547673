"""Webhooks: a user's notifications, or a project's, POSTed as JSON as they happen.

A user's webhook receives what their feed shows (mentions of them, approvals
requested in projects they maintain, alerts of projects they can read); a project's
webhook receives every mention, approval request and alert of that project. Each
notification is one JSON POST (:func:`loopline.monitoring.alerts.deliver`: retried
with exponential backoff on 5xx, 408, 429 and connection errors).

The :class:`Dispatcher` reads the event log after each webhook's cursor and claims
a batch by moving the cursor with a compare-and-set, so with several server
processes each event is delivered by exactly one of them; an event claimed by a
process that dies before delivering it is lost (at most once).

>>> import tempfile
>>> from loopline.store.metadata import Database
>>> from loopline.auth.store import AuthStore
>>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/m.db")
>>> _ = AuthStore(db).create_user("bo", None)
>>> hooks = WebhookStore(db)
>>> hook = hooks.add("http://127.0.0.1:9/hook", user="bo", actor="bo")
>>> hook["user"], hook["project"], [h["id"] for h in hooks.list(user="bo")]
('bo', None, [1])
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.auth.roles import Role
from loopline.auth.store import AuthStore, now_ms
from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.store.metadata.schema import events, projects
from loopline.store.metadata.schema_collab import users, webhooks

if TYPE_CHECKING:
    from loopline.store.metadata import Database

__all__ = ["Dispatcher", "WebhookStore"]

MAX_PER_OWNER = 20
_BATCH = 200


def _hook_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "user": row.user_name,
        "project": row.project_name,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "delivered": row.delivered,
        "failed": row.failed,
        "last_error": row.last_error,
    }


class WebhookStore:
    """Add, list and remove webhooks of users and projects."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _select(self) -> sa.Select[Any]:
        return (
            sa.select(
                webhooks,
                users.c.name.label("user_name"),
                projects.c.name.label("project_name"),
            )
            .outerjoin(users, users.c.id == webhooks.c.user_id)
            .outerjoin(projects, projects.c.id == webhooks.c.project_id)
            .order_by(webhooks.c.id)
        )

    def add(
        self, url: str, *, user: str | None = None, project: str | None = None, actor: str
    ) -> dict[str, Any]:
        """A webhook for ``user`` or for ``project`` (exactly one); only new events go out."""
        from loopline.monitoring.alerts import check_webhook

        check_webhook(url)
        if len(url) > 2000:
            raise InvalidArgumentError("a webhook URL has at most 2000 characters")
        if (user is None) == (project is None):
            raise InvalidArgumentError("a webhook belongs to a user or to a project, not both")
        with self.db.write() as conn:
            user_id = AuthStore._user_id(conn, user) if user is not None else None
            project_id = AuthStore.project_id(conn, project) if project is not None else None
            owner = (
                webhooks.c.user_id == user_id
                if user_id is not None
                else webhooks.c.project_id == project_id
            )
            count = conn.execute(sa.select(sa.func.count()).where(owner)).scalar_one()
            if count >= MAX_PER_OWNER:
                raise InvalidArgumentError(
                    f"at most {MAX_PER_OWNER} webhooks each", hint="remove one first"
                )
            last = conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
            hook_id = conn.execute(
                sa.insert(webhooks).returning(webhooks.c.id),
                {
                    "user_id": user_id,
                    "project_id": project_id,
                    "url": url,
                    "created_by": actor,
                    "created_at": now_ms(),
                    "cursor": last,
                },
            ).scalar_one()
            row = conn.execute(self._select().where(webhooks.c.id == hook_id)).one()
        return _hook_dict(row)

    def list(self, *, user: str | None = None, project: str | None = None) -> list[dict[str, Any]]:
        """The webhooks of ``user`` or of ``project``."""
        query = self._select()
        if user is not None:
            query = query.where(users.c.name == user)
        if project is not None:
            query = query.where(projects.c.name == project)
        with self.db.read() as conn:
            return [_hook_dict(r) for r in conn.execute(query)]

    def get(self, hook_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(self._select().where(webhooks.c.id == hook_id)).first()
        if row is None:
            raise NotFoundError(f"webhook {hook_id} does not exist")
        return _hook_dict(row)

    def remove(self, hook_id: int) -> None:
        with self.db.write() as conn:
            gone = conn.execute(sa.delete(webhooks).where(webhooks.c.id == hook_id)).rowcount
        if not gone:
            raise NotFoundError(f"webhook {hook_id} does not exist")


class Dispatcher:
    """Delivers new notifications to every webhook (``run_once``, or a background thread)."""

    def __init__(
        self, db: Database, *, interval: float = 1.0, attempts: int = 4, backoff: float = 0.5
    ) -> None:
        self.db = db
        self.interval = interval
        self.attempts = attempts
        self.backoff = backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="loopline-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        import logging

        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # a broken store must not kill the thread; retry later
                logging.getLogger(__name__).exception("webhook delivery failed")

    def run_once(self) -> int:
        """Claim and deliver what is new for every webhook; the number of POSTs that went out."""
        with self.db.read() as conn:
            hooks = conn.execute(sa.select(webhooks)).all()
        sent = 0
        for hook in hooks:
            if self._stop.is_set():
                break
            sent += self._serve(hook)
        return sent

    def _serve(self, hook: Any) -> int:
        rows = self._claim(hook)
        if not rows:
            return 0
        sent = failed = 0
        error = ""
        for body in self._bodies(hook, rows):
            result = self._post(hook.url, body)
            if result.ok:
                sent += 1
            else:
                failed += 1
                error = result.error
        if sent or failed:
            values: dict[str, Any] = {
                "delivered": webhooks.c.delivered + sent,
                "failed": webhooks.c.failed + failed,
            }
            if error:
                values["last_error"] = error[:500]
            with self.db.write() as conn:
                conn.execute(sa.update(webhooks).where(webhooks.c.id == hook.id).values(values))
        return sent

    def _claim(self, hook: Any) -> list[Any]:
        """The next events after the hook's cursor, once this process has moved the cursor."""
        from loopline.auth.collab import NOTIFYING_KINDS

        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.id > hook.cursor, NOTIFYING_KINDS)
                .order_by(events.c.id)
                .limit(_BATCH)
            ).all()
        if not rows:
            return []
        with self.db.write() as conn:
            claimed = conn.execute(
                sa.update(webhooks)
                .where(webhooks.c.id == hook.id, webhooks.c.cursor == hook.cursor)
                .values(cursor=rows[-1].id)
            ).rowcount
        return list(rows) if claimed else []

    def _bodies(self, hook: Any, rows: list[Any]) -> list[dict[str, Any]]:
        """The JSON bodies to POST: the events that notify the hook's user or project."""
        from loopline.auth.collab import notification_type

        with self.db.read() as conn:
            names = {r.id: r.name for r in conn.execute(sa.select(projects.c.id, projects.c.name))}
            user = (
                conn.execute(sa.select(users).where(users.c.id == hook.user_id)).first()
                if hook.user_id is not None
                else None
            )
        if hook.user_id is not None and (user is None or user.disabled):
            return []
        roles = AuthStore(self.db).roles_of(user.id) if user is not None else {}
        out = []
        for row in rows:
            payload = orjson.loads(row.payload)
            project = names.get(row.project_id, "")
            if user is None:
                if row.project_id != hook.project_id:
                    continue
                kind = notification_type(row.kind, payload, None, Role.ADMIN)
            elif row.actor == user.name:
                continue  # nobody is notified of what they did themselves
            else:
                role = Role.SERVER_ADMIN if user.is_admin else roles.get(project, Role.OPEN)
                kind = notification_type(row.kind, payload, user.name, role)
            if kind is None:
                continue
            body = {
                "type": kind,
                "event": row.kind,
                "event_id": row.id,
                "project": project,
                "entity_type": row.entity_type,
                "entity_id": row.entity_id,
                "actor": row.actor,
                "payload": payload,
                "created_at": row.created_at,
            }
            if user is not None:
                body["user"] = user.name
            out.append(body)
        return out

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        from loopline.monitoring.alerts import deliver

        return deliver(url, body, attempts=self.attempts, backoff=self.backoff)

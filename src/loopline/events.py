"""The durable, append-only event log.

Every capability records what changed (run finished, dataset version added, model
version created, alias moved, approval decided, alert raised, deployment changed)
as a row in the ``events`` table, inside the same transaction as the change itself,
so an event exists exactly when its change does. Consumers (the server's stream,
the scheduler, inference servers, webhooks) read from an id onwards:

>>> import tempfile
>>> from loopline.store.metadata import Database
>>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/m.db")
>>> with db.write() as conn:
...     event_id = emit(conn, "demo.happened", "demo", "1", "me", {"x": 1})
>>> [(e.kind, e.payload) for e in read_events(db, after_id=0)]
[('demo.happened', {'x': 1})]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from loopline.store.metadata.schema import events

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.engine import Connection

    from loopline.store.metadata import Database

__all__ = ["Event", "emit", "read_events"]

_EVENT_LOCK = 0x1E7E47
# Built once: emitting sits on the write path of every run that ends.
_INSERT = sa.insert(events).returning(events.c.id)
_PG_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k)")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str
    entity_type: str
    entity_id: str
    actor: str
    payload: dict[str, Any]
    created_at: int
    project_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def emit(
    conn: Connection,
    kind: str,
    entity_type: str,
    entity_id: str,
    actor: str,
    payload: dict[str, Any],
    project_id: int = 1,
) -> int:
    """Append an event inside the caller's transaction; returns its id."""
    if conn.dialect.name == "postgresql":
        # Ids come from a sequence, so two transactions could commit them out of order
        # and a reader polling "after id N" would skip the late one. Serialising the
        # event-writing transactions keeps commit order equal to id order.
        conn.execute(_PG_LOCK, {"k": _EVENT_LOCK})
    row = {
        "project_id": project_id,
        "kind": kind,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "actor": actor,
        "payload": orjson.dumps(payload).decode(),
        "created_at": int(time.time() * 1000),
    }
    return int(conn.execute(_INSERT, row).scalar_one())


def read_events(
    db: Database,
    *,
    after_id: int = 0,
    kinds: list[str] | None = None,
    limit: int = 1000,
    project_ids: Collection[int] | None = None,
) -> list[Event]:
    """Events with ``id > after_id`` in id order; ``kinds`` may end in ``*`` (a prefix).

    ``project_ids`` keeps only those projects' events (what a caller may read).
    """
    clauses: list[Any] = [events.c.id > after_id]
    if project_ids is not None:
        clauses.append(events.c.project_id.in_(list(project_ids)))
    if kinds:
        ors = [
            events.c.kind.startswith(k[:-1], autoescape=True)
            if k.endswith("*")
            else events.c.kind == k
            for k in kinds
        ]
        clauses.append(sa.or_(*ors))
    with db.read() as conn:
        rows = conn.execute(
            sa.select(events).where(*clauses).order_by(events.c.id).limit(limit)
        ).all()
    return [
        Event(
            id=r.id,
            kind=r.kind,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            actor=r.actor,
            payload=orjson.loads(r.payload),
            created_at=r.created_at,
            project_id=r.project_id,
        )
        for r in rows
    ]

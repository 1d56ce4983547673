"""The fast path of ``add`` and ``status`` on the embedded SQLite store: stdlib ``sqlite3``, static SQL.

Importing SQLAlchemy alone costs a quarter of a second, more than the whole budget
of re-adding an unchanged tree. When the metadata store is a SQLite file that
already has the data tables, :class:`LiteStore` reads the latest version and
records a new one with the same statements :class:`~loopline.data.store.DataStore`
issues (a contract test compares the rows both write). Anything unexpected (no
database yet, an older schema, another backend) makes :func:`open_lite` return
None and the caller takes the SQLAlchemy path, which also migrates.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import TYPE_CHECKING
from urllib.parse import unquote

from loopline.data.rows import (
    EVENT_TAG_MOVED,
    EVENT_VERSION_ADDED,
    LINEAGE_TYPE,
    NewVersion,
    VersionRow,
    now_ms,
)
from loopline.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LiteStore", "open_lite", "sqlite_path"]

_SELECT = """
SELECT v.id, v.dataset_id, d.name, v.version, v.digest, v.kind, v.file_count, v.total_size,
       v.message, v.source, v.schema_json, v.profile_digest, v.created_at, v.created_by
FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id
"""
_LATEST = (
    _SELECT + "WHERE v.dataset_id = ? AND v.deleted_at IS NULL ORDER BY v.version DESC LIMIT 1"
)
_LATEST_BY_NAME = (
    _SELECT
    + """JOIN projects p ON p.id = d.project_id
WHERE p.name = ? AND d.name = ? AND d.deleted_at IS NULL AND v.deleted_at IS NULL
ORDER BY v.version DESC LIMIT 1"""
)


_INSERT_DATASET = (
    "INSERT INTO datasets (project_id, name, description, created_at, updated_at)"
    " VALUES (?, ?, '', ?, ?) RETURNING id"
)
_INSERT_VERSION = (
    "INSERT INTO dataset_versions (dataset_id, version, digest, kind, file_count,"
    " total_size, message, source, schema_json, profile_digest, created_at,"
    " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
_CURRENT_TAG = (
    "SELECT t.version_id, v.version FROM dataset_tags t"
    " JOIN dataset_versions v ON v.id = t.version_id"
    " WHERE t.dataset_id = ? AND t.tag = ?"
)
_INSERT_TAG = (
    "INSERT INTO dataset_tags (dataset_id, tag, version_id, updated_at, updated_by)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UPDATE_TAG = (
    "UPDATE dataset_tags SET version_id = ?, updated_at = ?, updated_by = ?"
    " WHERE dataset_id = ? AND tag = ?"
)
_INSERT_TAG_HISTORY = (
    "INSERT INTO dataset_tag_history (dataset_id, tag, from_version_id, to_version_id,"
    " actor, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO events (project_id, kind, entity_type, entity_id, actor, payload, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PROBES: list[tuple[str, tuple[object, ...]]] = [
    (_LATEST_BY_NAME, ("", "")),
    (_INSERT_DATASET, (0, "", 0, 0)),
    (_INSERT_VERSION, (0,) * 12),
    (_CURRENT_TAG, (0, "")),
    (_INSERT_TAG, (0, "", 0, 0, "")),
    (_UPDATE_TAG, (0, 0, "", 0, "")),
    (_INSERT_TAG_HISTORY, (0, "", 0, 0, "", 0)),
    (_INSERT_EVENT, (0, "", "", "", "", "", 0)),
]


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URL (None for memory databases or other backends).

    >>> sqlite_path("sqlite:////tmp/x/loopline.db"), sqlite_path("postgresql://h/db")
    ('/tmp/x/loopline.db', None)
    """
    if not url.startswith("sqlite:///"):
        return None
    path = unquote(url[len("sqlite:///") :].split("?", 1)[0])
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def open_lite(url: str) -> LiteStore | None:
    """A fast store on ``url`` when it is a SQLite file whose schema fits the statements, else None.

    Fitness is checked by compiling every statement (``EXPLAIN``): a missing table
    or column (a store not migrated yet) fails here, and the caller takes the
    SQLAlchemy path, which migrates.
    """
    path = sqlite_path(url)
    if path is None or not os.path.isfile(path):
        return None
    try:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the SQLAlchemy engine sets it
        for statement, params in _PROBES:
            conn.execute("EXPLAIN " + statement, params)
    except sqlite3.Error:
        conn.close()
        return None
    return LiteStore(conn)


class LiteStore:
    """``latest`` and ``record`` of :class:`~loopline.data.store.DataStore`, on ``sqlite3``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"the metadata database failed: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def latest(self, project: str, name: str) -> VersionRow | None:
        row = self.conn.execute(_LATEST_BY_NAME, (project, name)).fetchone()
        return None if row is None else VersionRow(*row)

    def record(self, new: NewVersion) -> tuple[VersionRow, bool]:
        with self._write() as conn:
            return self._record(conn, new)

    def _record(self, conn: sqlite3.Connection, new: NewVersion) -> tuple[VersionRow, bool]:
        now = now_ms()
        found = conn.execute("SELECT id FROM projects WHERE name = ?", (new.project,)).fetchone()
        if found is None:
            raise NotFoundError(
                f"project {new.project!r} does not exist",
                hint="the 'default' project always exists; set LOOPLINE_PROJECT to it",
            )
        pid = int(found[0])
        found = conn.execute(
            "SELECT id FROM datasets WHERE project_id = ? AND name = ?", (pid, new.name)
        ).fetchone()
        if found is None:
            dataset_id = int(conn.execute(_INSERT_DATASET, (pid, new.name, now, now)).fetchone()[0])
        else:
            dataset_id = int(found[0])
        row = conn.execute(_LATEST, (dataset_id,)).fetchone()
        latest = None if row is None else VersionRow(*row)
        if latest is not None and latest.digest == new.digest:
            for tag in new.tags:
                self._move_tag(conn, pid, latest, tag, new.user, now)
            return latest, False
        top = conn.execute(
            "SELECT max(version) FROM dataset_versions WHERE dataset_id = ?", (dataset_id,)
        ).fetchone()[0]
        number = int(top or 0) + 1
        version_id = int(
            conn.execute(
                _INSERT_VERSION,
                (
                    dataset_id,
                    number,
                    new.digest,
                    new.kind,
                    new.file_count,
                    new.total_size,
                    new.message,
                    new.source,
                    new.schema_json,
                    new.profile_digest,
                    now,
                    new.user,
                ),
            ).fetchone()[0]
        )
        conn.execute("UPDATE datasets SET updated_at = ? WHERE id = ?", (now, dataset_id))
        created = new.row(version_id, dataset_id, number, now)
        _emit(
            conn,
            pid,
            EVENT_VERSION_ADDED,
            str(version_id),
            new.user,
            new.event_payload(number),
            now,
        )
        for tag in new.tags:
            self._move_tag(conn, pid, created, tag, new.user, now)
        return created, True

    @staticmethod
    def _move_tag(
        conn: sqlite3.Connection, pid: int, row: VersionRow, tag: str, actor: str, now: int
    ) -> None:
        current = conn.execute(_CURRENT_TAG, (row.dataset_id, tag)).fetchone()
        if current is not None and current[0] == row.id:
            return
        if current is None:
            conn.execute(_INSERT_TAG, (row.dataset_id, tag, row.id, now, actor))
        else:
            conn.execute(_UPDATE_TAG, (row.id, now, actor, row.dataset_id, tag))
        conn.execute(
            _INSERT_TAG_HISTORY,
            (row.dataset_id, tag, None if current is None else current[0], row.id, actor, now),
        )
        _emit(
            conn,
            pid,
            EVENT_TAG_MOVED,
            str(row.id),
            actor,
            {
                "dataset": row.name,
                "tag": tag,
                "from_version": None if current is None else current[1],
                "to_version": row.version,
            },
            now,
        )


def _emit(
    conn: sqlite3.Connection,
    pid: int,
    kind: str,
    entity_id: str,
    actor: str,
    payload: dict[str, object],
    now: int,
) -> None:
    """:func:`loopline.events.emit` for SQLite (no lock needed: writers are serialised)."""
    import orjson

    conn.execute(
        _INSERT_EVENT,
        (pid, kind, LINEAGE_TYPE, entity_id, actor, orjson.dumps(payload).decode(), now),
    )

"""The data versioning SQL, on SQLite and PostgreSQL; and the sqlite3 fast path writing the same rows.

Version numbers are dense per dataset even with concurrent writers; tags move and
keep their history; every version added and tag moved is an event; lineage edges
are recorded once.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from loopline.data._sqlite import LiteStore, open_lite
from loopline.data.refs import parse_ref
from loopline.data.rows import NewVersion
from loopline.data.store import DataStore
from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.events import read_events
from loopline.store.metadata import Database

if TYPE_CHECKING:
    from pathlib import Path


def _digest(n: int) -> str:
    return "blake3:" + hashlib.sha256(str(n).encode()).hexdigest()


def _new(name: str, n: int, **extra: object) -> NewVersion:
    fields: dict[str, object] = {
        "project": "default",
        "name": name,
        "digest": _digest(n),
        "kind": "dir",
        "file_count": n,
        "total_size": 10 * n,
        "user": "tester",
        "message": f"v{n}",
        "source": "/data",
        **extra,
    }
    return NewVersion(**fields)  # type: ignore[arg-type]


def test_record_numbers_versions_and_skips_unchanged_content(db: Database) -> None:
    store = DataStore(db)
    assert store.latest("default", "ds") is None
    first, created = store.record(_new("ds", 1))
    assert created
    assert first.version == 1
    assert first.name == "ds"
    same, created = store.record(_new("ds", 1, message="ignored"))
    assert not created
    assert same.id == first.id
    second, created = store.record(_new("ds", 2))
    assert created
    assert second.version == 2
    back, created = store.record(_new("ds", 1))  # content seen before, but not the latest
    assert created
    assert back.version == 3
    latest = store.latest("default", "ds")
    assert latest is not None
    assert latest.version == 3
    assert [v.version for v in store.versions("default", "ds")] == [1, 2, 3]


def test_resolve_every_kind_of_reference(db: Database) -> None:
    store = DataStore(db)
    store.record(_new("ds", 1, digest="blake3:abcd" + "1" * 60))
    store.record(_new("ds", 2, digest="blake3:abcd" + "2" * 60, tags=("prod",)))
    store.record(_new("ds", 3))
    store.record(_new("ds", 4, digest="blake3:abcd" + "1" * 60))  # v1's content again
    assert store.resolve("default", parse_ref("ds")).version == 4
    assert store.resolve("default", parse_ref("ds@latest")).version == 4
    assert store.resolve("default", parse_ref("ds@1")).version == 1
    assert store.resolve("default", parse_ref("ds@prod")).version == 2
    assert store.resolve("default", parse_ref("ds@sha:" + _digest(3)[7:19])).version == 3
    assert store.resolve("default", parse_ref("ds@sha:abcd1111")).version == 4  # the newest
    with pytest.raises(InvalidArgumentError, match="ambiguous"):
        store.resolve("default", parse_ref("ds@sha:abcd"))
    for missing in ("ds@9", "ds@nope", "other", "ds@sha:ffff"):
        with pytest.raises(NotFoundError):
            store.resolve("default", parse_ref(missing))


def test_tags_move_and_keep_their_history(db: Database) -> None:
    store = DataStore(db)
    store.record(_new("ds", 1))
    store.record(_new("ds", 2))
    assert store.move_tag("default", parse_ref("ds@1"), "prod", "ann").from_version is None
    move = store.move_tag("default", parse_ref("ds@2"), "prod", "bob")
    assert (move.from_version, move.to_version) == (1, 2)
    again = store.move_tag("default", parse_ref("ds@2"), "prod", "bob")
    assert again.from_version == again.to_version == 2
    history = store.tag_history("default", "ds")
    assert [(t, a, b, who) for t, a, b, who, _ in history] == [
        ("prod", None, 1, "ann"),
        ("prod", 1, 2, "bob"),
    ]
    versions = store.versions("default", "ds")
    assert store.tags_for([v.id for v in versions]) == {versions[1].id: ["prod"]}


def test_versions_and_tag_moves_are_events(db: Database) -> None:
    store = DataStore(db)
    store.record(_new("ds", 1, tags=("raw",)))
    kinds = [
        (e.kind, e.payload.get("version", e.payload.get("to_version"))) for e in read_events(db)
    ]
    assert kinds == [("dataset.version_added", 1), ("dataset.tag_moved", 1)]


def test_datasets_listing(db: Database) -> None:
    store = DataStore(db)
    store.record(_new("b", 1))
    store.record(_new("a", 1))
    store.record(_new("a", 2))
    listing = store.datasets("default")
    assert [(d.name, d.versions, d.latest, d.total_size) for d in listing] == [
        ("a", 2, 2, 20),
        ("b", 1, 1, 10),
    ]
    with pytest.raises(NotFoundError, match="project"):
        store.datasets("nope")


def test_concurrent_writers_get_consecutive_versions(db: Database) -> None:
    store = DataStore(db)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                store.record(_new("busy", 100 * k + i + 1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.version for v in store.versions("default", "busy")] == list(range(1, 21))


def test_lineage_edges_are_recorded_once(db: Database) -> None:
    store = DataStore(db)
    assert store.add_edge(("dataset_version", "1"), ("run", "r1"), "input")
    assert not store.add_edge(("dataset_version", "1"), ("run", "r1"), "input", "training")
    (edge,) = store.edges(src=("dataset_version", "1"))
    assert edge.context == "training"  # an implicit edge gets the explicit context
    assert not store.add_edge(("dataset_version", "1"), ("run", "r1"), "input", "other")
    assert store.edges(dst=("run", "r1"))[0].context == "training"
    assert store.edges(dst=("run", "nope")) == []


# -- the stdlib sqlite3 fast path --------------------------------------------------------------
def _rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    tables = {
        "datasets": "SELECT project_id, name, description FROM datasets ORDER BY id",
        "dataset_versions": (
            "SELECT dataset_id, version, digest, kind, file_count, total_size, message, source,"
            " schema_json, profile_digest, created_by, deleted_at FROM dataset_versions ORDER BY id"
        ),
        "dataset_tags": "SELECT dataset_id, tag, version_id, updated_by FROM dataset_tags ORDER BY tag",
        "dataset_tag_history": (
            "SELECT dataset_id, tag, from_version_id, to_version_id, actor"
            " FROM dataset_tag_history ORDER BY id"
        ),
        "events": "SELECT project_id, kind, entity_type, entity_id, actor, payload FROM events ORDER BY id",
    }
    with db.read() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(q))] for t, q in tables.items()}


def _script(write: object) -> None:
    record = write.record  # type: ignore[attr-defined]
    record(
        _new(
            "ds", 1, tags=("raw",), schema_json='{"files": {}}', profile_digest="blake3:" + "1" * 64
        )
    )
    record(_new("ds", 1))
    record(_new("ds", 1, tags=("raw", "seen")))
    record(_new("ds", 2, tags=("raw",)))
    record(_new("other", 3))


def test_the_fast_path_writes_what_the_sqlalchemy_path_writes(tmp_path: Path) -> None:
    slow = Database(f"sqlite:///{tmp_path / 'slow.db'}")
    fast = Database(f"sqlite:///{tmp_path / 'fast.db'}")
    _script(DataStore(slow))
    lite = open_lite(fast.url)
    assert isinstance(lite, LiteStore)
    _script(lite)
    assert _rows(fast) == _rows(slow)
    latest = lite.latest("default", "ds")
    expected = DataStore(slow).latest("default", "ds")
    assert latest is not None
    assert expected is not None
    assert latest.version == expected.version
    assert latest.digest == expected.digest
    lite.close()


def test_the_fast_path_stays_out_of_unmigrated_or_foreign_stores(tmp_path: Path) -> None:
    assert open_lite(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert open_lite("postgresql+psycopg://u@h/db") is None
    assert open_lite("sqlite://") is None
    empty = tmp_path / "empty.db"
    import sqlite3

    sqlite3.connect(empty).execute("CREATE TABLE unrelated (x)").connection.commit()
    assert open_lite(f"sqlite:///{empty}") is None

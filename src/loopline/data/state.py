"""The state cache: digests of files already hashed, so unchanged files are never read again.

For every tree (or single file) added or checked, the cache keeps, under the
tree's absolute path, each file's ``(inode, mtime_ns, size) -> digest`` by its
path in the tree: a file whose stat fields are unchanged keeps its digest. It
also keeps a *fingerprint* of the whole listing (every path and stat field) with
the manifest digest it gave, so an unchanged tree of 20,000 files is recognised
after one stat per file and one row read, without building its manifest.

The cache lives in ``LOOPLINE_HOME/data-state.db``, a plain ``sqlite3`` database
in WAL mode (no SQLAlchemy: this is the CLI's fast path); a tree's files are one
orjson blob, which loads in milliseconds. It is only a cache: when it cannot be
opened it is rebuilt, or replaced by :class:`NoState`; a failed write is ignored.

A file modified again within the file system's timestamp granularity after it was
hashed could keep its mtime. Such "racily clean" files (the term is git's) are not
cached: only files whose mtime is at least :data:`RACY_NS` older than the moment
hashing started are.

>>> import pathlib, tempfile, time
>>> from loopline.data.scan import scan
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> _ = (home / "x.bin").write_bytes(b"abc")
>>> snap = scan(home / "x.bin")
>>> state = StateCache(home / "state.db")
>>> later = time.time_ns() + 10**10
>>> state.record(snap, {"x.bin": "ab" * 32}, "blake3:" + "cd" * 32, started_ns=later)
>>> tree = state.lookup(snap)
>>> tree.known == {"x.bin": "ab" * 32}, tree.manifest_digest == "blake3:" + "cd" * 32
(True, True)
>>> state.close()
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import blake3
import orjson

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from loopline.data.scan import Snapshot

__all__ = ["RACY_NS", "NoState", "State", "StateCache", "TreeState", "fingerprint", "open_state"]

RACY_NS = 100_000_000
"""Files modified less than this long (0.1 s) before hashing started are not cached."""
COARSE_RACY_NS = 2_000_000_000
"""The same for files whose mtime has whole seconds only (a coarse file system)."""

MAX_CHANGES = 2000
"""Up to this many changed files are written as rows; more rewrite the tree's blob."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trees (
    root TEXT PRIMARY KEY,
    fingerprint TEXT,
    manifest TEXT,
    files BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_changes (
    root TEXT NOT NULL,
    relpath TEXT NOT NULL,
    entry BLOB NOT NULL,
    PRIMARY KEY (root, relpath)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
    digest TEXT PRIMARY KEY,
    profile BLOB NOT NULL
) WITHOUT ROWID;
"""


def fingerprint(snapshot: Snapshot) -> str:
    """A digest of the listing: every path with its inode, mtime, size and mode bit."""
    data = orjson.dumps([snapshot.kind, snapshot.files], default=tuple)
    return blake3.blake3(data).hexdigest()


class TreeState:
    """What the cache knows of a snapshot.

    ``known`` is loaded on first use: when the whole listing matches (the
    ``manifest_digest`` is known), an unchanged ``add`` needs nothing else.
    """

    __slots__ = ("_known", "_load", "fingerprint", "manifest_digest")

    def __init__(
        self, fingerprint: str = "", load: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self._known: dict[str, str] | None = None if load is not None else {}
        self._load = load
        self.manifest_digest: str | None = None
        """The manifest digest, when the whole listing is exactly as it was cached."""
        self.fingerprint = fingerprint

    @property
    def known(self) -> dict[str, str]:
        """``relpath -> hex digest`` of files whose stat fields did not change."""
        if self._known is None:
            assert self._load is not None
            self._known = self._load()
        return self._known


class _Seen(NamedTuple):
    snapshot: Snapshot
    fingerprint: str
    stored_fingerprint: str | None
    stored_manifest: str | None
    files: dict[str, list[object]] | None
    """None until loaded."""


class State:
    """The interface: look up known digests, record new ones (a null object needs both)."""

    def lookup(self, snapshot: Snapshot) -> TreeState:
        return TreeState()

    def record(
        self,
        snapshot: Snapshot,
        digests: dict[str, str],
        manifest_digest: str | None,
        *,
        started_ns: int,
    ) -> None:
        """Remember ``digests`` (by relpath) of the snapshot's files, hashed from ``started_ns`` on.

        ``manifest_digest`` is the snapshot's manifest when every file has a digest.
        """

    def get_profile(self, digest: str) -> bytes | None:
        return None

    def put_profile(self, digest: str, profile: bytes) -> None:
        """Remember a tabular file's profile by its content digest."""

    def close(self) -> None:
        """Release the database."""


class NoState(State):
    """No cache at all: everything is hashed every time."""


class StateCache(State):
    """The cache in a SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:
            # A cache may be thrown away: start again from an empty one.
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            self._conn = self._open()
        # root -> (the snapshot looked up, its fingerprint, the stored row: fingerprint,
        # manifest, files), so ``record`` neither recomputes nor rewrites what it need not.
        self._seen: dict[str, _Seen] = {}

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # a cache: losing the last write is harmless
        conn.executescript(_SCHEMA)
        return conn

    def lookup(self, snapshot: Snapshot) -> TreeState:
        fp = fingerprint(snapshot)
        root = snapshot.root
        row = self._conn.execute(
            "SELECT fingerprint, manifest FROM trees WHERE root = ?", (root,)
        ).fetchone()
        if row is None:
            self._seen[root] = _Seen(snapshot, fp, None, None, {})
            return TreeState(fp)
        self._seen[root] = _Seen(snapshot, fp, row[0], row[1], None)

        def load() -> dict[str, str]:
            found = self._conn.execute("SELECT files FROM trees WHERE root = ?", (root,)).fetchone()
            cached: dict[str, list[object]] = orjson.loads(found[0]) if found else {}
            for rel, entry in self._conn.execute(
                "SELECT relpath, entry FROM tree_changes WHERE root = ?", (root,)
            ):
                cached[rel] = orjson.loads(entry)
            self._seen[root] = _Seen(snapshot, fp, row[0], row[1], cached)
            known: dict[str, str] = {}
            get = cached.get
            for rel, _, size, ino, mtime, _ in snapshot.files:
                entry = get(rel)
                if entry is not None and entry[0] == ino and entry[1] == mtime and entry[2] == size:
                    known[rel] = entry[3]  # type: ignore[assignment]
            return known

        tree = TreeState(fp, load)
        if row[0] == fp and row[1]:
            tree.manifest_digest = row[1]
        return tree

    def record(
        self,
        snapshot: Snapshot,
        digests: dict[str, str],
        manifest_digest: str | None,
        *,
        started_ns: int,
    ) -> None:
        files: dict[str, list[object]] = {}
        racy = False
        fine, coarse = started_ns - RACY_NS, started_ns - COARSE_RACY_NS
        get = digests.get
        for rel, _, size, ino, mtime, _ in snapshot.files:
            digest = get(rel)
            if digest is None or mtime >= fine or (mtime >= coarse and mtime % 1_000_000_000 == 0):
                racy = True  # unknown, or it could change again without changing its mtime
                continue
            files[rel] = [ino, mtime, size, digest]
        seen = self._seen.get(snapshot.root)
        if seen is not None and seen.snapshot is not snapshot:
            seen = None
        whole = None
        if not racy and manifest_digest is not None:
            whole = seen.fingerprint if seen is not None else fingerprint(snapshot)
        manifest_digest = manifest_digest if whole else None
        # A stored fingerprint of another listing is harmless (no other listing matches it),
        # so without a new one to store, the write is needed only for new file entries.
        if (
            seen is not None
            and seen.files is not None
            and (
                whole is None
                or (seen.stored_fingerprint, seen.stored_manifest) == (whole, manifest_digest)
            )
        ):
            stored = seen.files.get
            if all(stored(k) == v for k, v in files.items()):
                return  # nothing new
        try:
            with self._transaction():
                self._write(snapshot.root, whole, manifest_digest, files, seen)
        except (sqlite3.Error, TypeError):
            return  # busy, read-only, or a name orjson refuses: the cache is only an optimisation
        self._seen[snapshot.root] = _Seen(
            snapshot, whole or fingerprint(snapshot), whole, manifest_digest, files
        )

    def _write(
        self,
        root: str,
        whole: str | None,
        manifest_digest: str | None,
        files: dict[str, list[object]],
        seen: _Seen | None,
    ) -> None:
        """A few changed entries go in ``tree_changes``; many rewrite the tree's blob."""
        conn = self._conn
        if seen is not None and seen.files is not None and seen.stored_fingerprint is not None:
            old = seen.files.get
            changed = [(k, v) for k, v in files.items() if old(k) != v]
            if len(changed) <= MAX_CHANGES:
                conn.executemany(
                    "INSERT OR REPLACE INTO tree_changes VALUES (?, ?, ?)",
                    [(root, k, orjson.dumps(v)) for k, v in changed],
                )
                conn.execute(
                    "UPDATE trees SET fingerprint = ?, manifest = ? WHERE root = ?",
                    (whole, manifest_digest, root),
                )
                return
        conn.execute(
            "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?)",
            (root, whole, manifest_digest, orjson.dumps(files)),
        )
        conn.execute("DELETE FROM tree_changes WHERE root = ?", (root,))

    def get_profile(self, digest: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT profile FROM profiles WHERE digest = ?", (digest,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put_profile(self, digest: str, profile: bytes) -> None:
        with contextlib.suppress(sqlite3.Error), self._transaction():
            self._conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?)", (digest, profile))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


def open_state(home: Path) -> State:
    """The cache of a loopline home, or :class:`NoState` when it cannot be opened."""
    try:
        return StateCache(home / "data-state.db")
    except (OSError, sqlite3.Error):
        return NoState()

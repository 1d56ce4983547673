"""The state cache: digests of files already hashed, so unchanged files are never read again.

For every tree (or single file) added or checked, the cache keeps, under the
tree's absolute path, ``(path, inode, mtime_ns, size, executable) -> digest`` for
each file: a file whose stat fields are unchanged keeps its digest. It
also keeps a *fingerprint* of the whole listing (every path and stat field) with
the manifest digest it gave, so an unchanged tree of 20,000 files is recognised
after one stat per file and one row read, without building its manifest.

The cache lives in ``LOOPLINE_HOME/data-state.db``, a plain ``sqlite3`` database
in WAL mode (no SQLAlchemy: this is the CLI's fast path); a tree's files are one
orjson blob, which loads in milliseconds, and a few changed files since are rows
of their own. It is only a cache: when it cannot be
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

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from loopline.data.scan import Snapshot

__all__ = [
    "RACY_NS",
    "NoState",
    "State",
    "StateCache",
    "TreeState",
    "file_keys",
    "fingerprint",
    "open_state",
]

RACY_NS = 100_000_000
"""Files modified less than this long (0.1 s) before hashing started are not cached."""
COARSE_RACY_NS = 2_000_000_000
"""The same for files whose mtime has whole seconds only (a coarse file system)."""

MAX_CHANGES = 2000
"""Up to this many changed entries are written as rows; more rewrite the tree's blob."""

_VERSION = 2
"""The cache's layout; a cache of another layout is dropped and rebuilt."""

_SCHEMA = """
DROP TABLE IF EXISTS trees;
DROP TABLE IF EXISTS tree_changes;
CREATE TABLE trees (
    root TEXT PRIMARY KEY,
    fingerprint TEXT,
    manifest TEXT,
    files BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE tree_changes (
    root TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT,
    PRIMARY KEY (root, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
    digest TEXT PRIMARY KEY,
    profile BLOB NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 2;
"""


def file_keys(snapshot: Snapshot) -> list[str]:
    """One text key per file: its path, inode, mtime, size and executable bit.

    A key names one state of one file, so the cache is a plain ``key -> digest``
    map: comparing a listing with it is a dictionary lookup per file, and what
    changed between two listings is a difference of key sets, both at C speed.
    """
    return [f"{r}\0{i}\0{m}\0{n}\0{x:d}" for r, _, n, i, m, x in snapshot.files]


def fingerprint(snapshot: Snapshot, keys: list[str] | None = None) -> str:
    """A digest of the listing: every path with its inode, mtime, size and mode bit."""
    text = "\0".join([snapshot.kind, *(file_keys(snapshot) if keys is None else keys)])
    return blake3.blake3(text.encode("utf-8", "surrogatepass")).hexdigest()


class TreeState:
    """What the cache knows of a snapshot.

    ``known`` is loaded on first use: when the whole listing matches (the
    ``manifest_digest`` is known), an unchanged ``add`` needs nothing else.
    """

    __slots__ = ("_known", "_load", "fingerprint", "manifest_digest", "stored_manifest")

    def __init__(
        self, fingerprint: str = "", load: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self._known: dict[str, str] | None = None if load is not None else {}
        self._load = load
        self.manifest_digest: str | None = None
        """The manifest digest, when the whole listing is exactly as it was cached."""
        self.stored_manifest: str | None = None
        """The manifest digest of the listing the cache holds (this one or an earlier).

        Once ``known`` is loaded, every digest in it is a file of that manifest: a
        caller who knows the manifest's files are stored (a version has it) need not
        look for them.
        """
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
    keys: list[str]
    fingerprint: str
    stored_fingerprint: str | None
    stored_manifest: str | None
    files: dict[str, str] | None
    """``key -> digest`` as stored; None until loaded."""
    pending: int | None
    """Rows in ``tree_changes`` for this tree (None: the tree has no row at all)."""


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
        # root -> the snapshot looked up, its keys and fingerprint, and the stored row, so
        # that ``record`` neither recomputes nor rewrites what it need not.
        self._seen: dict[str, _Seen] = {}

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # a cache: losing the last write is harmless
        if conn.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
            conn.executescript(_SCHEMA)
        return conn

    def lookup(self, snapshot: Snapshot) -> TreeState:
        keys = file_keys(snapshot)
        fp = fingerprint(snapshot, keys)
        root = snapshot.root
        row = self._conn.execute(
            "SELECT fingerprint, manifest FROM trees WHERE root = ?", (root,)
        ).fetchone()
        if row is None:
            self._seen[root] = _Seen(snapshot, keys, fp, None, None, {}, None)
            return TreeState(fp)
        self._seen[root] = _Seen(snapshot, keys, fp, row[0], row[1], None, 0)

        def load() -> dict[str, str]:
            import orjson  # here: an unchanged tree never needs it (nor its import time)

            # One read transaction: the entries and the manifest they belong to agree
            # even while another process records this tree.
            conn = self._conn
            conn.execute("BEGIN")
            try:
                found = conn.execute(
                    "SELECT fingerprint, manifest, files FROM trees WHERE root = ?", (root,)
                ).fetchone()
                changes = conn.execute(
                    "SELECT key, digest FROM tree_changes WHERE root = ?", (root,)
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            stored_fp, stored_manifest = (found[0], found[1]) if found else (None, None)
            cached: dict[str, str] = orjson.loads(found[2]) if found else {}
            for key, digest in changes:
                if digest is None:
                    cached.pop(key, None)  # a tombstone: that state of the file is gone
                else:
                    cached[key] = digest
            tree.stored_manifest = stored_manifest
            self._seen[root] = _Seen(
                snapshot, keys, fp, stored_fp, stored_manifest, cached, len(changes)
            )
            get = cached.get
            known: dict[str, str] = {}
            for f, key in zip(snapshot.files, keys, strict=True):
                digest = get(key)
                if digest is not None:
                    known[f[0]] = digest
            return known

        tree = TreeState(fp, load)
        tree.stored_manifest = row[1]
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
        seen = self._seen.get(snapshot.root)
        if seen is not None and seen.snapshot is not snapshot:
            seen = None
        keys = seen.keys if seen is not None else file_keys(snapshot)
        files: dict[str, str] = {}
        racy = False
        fine, coarse = started_ns - RACY_NS, started_ns - COARSE_RACY_NS
        get = digests.get
        for f, key in zip(snapshot.files, keys, strict=True):
            digest = get(f[0])
            mtime = f[4]
            if digest is None or mtime >= fine or (mtime >= coarse and mtime % 1_000_000_000 == 0):
                racy = True  # unknown, or it could change again without changing its mtime
                continue
            files[key] = digest
        whole = None
        if not racy and manifest_digest is not None:
            whole = seen.fingerprint if seen is not None else fingerprint(snapshot, keys)
        manifest_digest = manifest_digest if whole else None
        if (
            seen is not None
            and seen.files is not None
            and (seen.stored_fingerprint, seen.stored_manifest) == (whole, manifest_digest)
            and files == seen.files
        ):
            return  # nothing new
        try:
            with self._transaction():
                pending = self._write(snapshot.root, whole, manifest_digest, files, seen)
        except (sqlite3.Error, UnicodeEncodeError, TypeError):
            return  # busy, read-only, or a name SQLite refuses: the cache is only an optimisation
        self._seen[snapshot.root] = _Seen(
            snapshot,
            keys,
            whole or fingerprint(snapshot, keys),
            whole,
            manifest_digest,
            files,
            pending,
        )

    def _write(
        self,
        root: str,
        whole: str | None,
        manifest_digest: str | None,
        files: dict[str, str],
        seen: _Seen | None,
    ) -> int:
        """Store ``files`` as the tree's entries; the rows in ``tree_changes`` after.

        A few changes go in ``tree_changes`` (up to :data:`MAX_CHANGES` rows in all);
        more rewrite the tree's blob. Either way the stored entries become exactly
        ``files``: states of files no longer listed get a tombstone, so every stored
        digest belongs to the last listing recorded.
        """
        import orjson

        conn = self._conn
        if seen is not None and seen.files is not None and seen.pending is not None:
            old = seen.files
            rows: list[tuple[str, str, str | None]]
            rows = [(root, k, files[k]) for k in files.keys() - old.keys()]
            rows += [(root, k, d) for k, d in files.items() if k in old and old[k] != d]
            rows += [(root, k, None) for k in old.keys() - files.keys()]
            if seen.pending + len(rows) <= MAX_CHANGES:
                conn.executemany("INSERT OR REPLACE INTO tree_changes VALUES (?, ?, ?)", rows)
                conn.execute(
                    "UPDATE trees SET fingerprint = ?, manifest = ? WHERE root = ?",
                    (whole, manifest_digest, root),
                )
                return seen.pending + len(rows)
        conn.execute(
            "INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?)",
            (root, whole, manifest_digest, orjson.dumps(files)),
        )
        conn.execute("DELETE FROM tree_changes WHERE root = ?", (root,))
        return 0

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

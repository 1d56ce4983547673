"""The state cache: unchanged files keep their digests, changed or racy ones do not."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from loopline.data.scan import scan
from loopline.data.state import NoState, StateCache, fingerprint, open_state

if TYPE_CHECKING:
    from pathlib import Path

LATER = time.time_ns() + 10**12  # hashing "started" long after every file was written
M = "blake3:" + "0" * 64


def _digests(root: Path) -> dict[str, str]:
    return {f.relpath: f"{i:064x}" for i, f in enumerate(scan(root).files)}


def test_unchanged_tree_is_known_whole(tree: Path, tmp_path: Path) -> None:
    state = StateCache(tmp_path / "s.db")
    snap = scan(tree)
    digests = _digests(tree)
    state.record(snap, digests, M, started_ns=LATER)
    again = StateCache(tmp_path / "s.db").lookup(scan(tree))
    assert again.known == digests
    assert again.manifest_digest == M
    assert again.fingerprint == fingerprint(snap)


def test_a_touched_file_loses_its_digest_and_the_tree_its_manifest(
    tree: Path, tmp_path: Path
) -> None:
    state = StateCache(tmp_path / "s.db")
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    target = tree / "sub" / "b.txt"
    info = target.stat()
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns + 1))  # same size, new mtime
    tree_state = StateCache(tmp_path / "s.db").lookup(scan(tree))
    assert "sub/b.txt" not in tree_state.known
    assert len(tree_state.known) == 3
    assert tree_state.manifest_digest is None


def test_replaced_file_with_same_size_and_mtime_is_caught_by_inode(
    tree: Path, tmp_path: Path
) -> None:
    state = StateCache(tmp_path / "s.db")
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    target = tree / "a.txt"
    info = target.stat()
    replacement = tree / "a.new"
    replacement.write_text("ALPHA\n")
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    other = tree / "keep-inode-busy"
    os.link(target, other)  # keeps the old inode alive so the new file cannot reuse it
    os.replace(replacement, target)
    assert "a.txt" not in StateCache(tmp_path / "s.db").lookup(scan(tree)).known


def test_racily_clean_files_are_not_cached(tree: Path, tmp_path: Path) -> None:
    state = StateCache(tmp_path / "s.db")
    fresh = tree / "fresh.txt"
    fresh.write_text("just written")
    snap = scan(tree)
    state.record(snap, _digests(tree), M, started_ns=time.time_ns())  # hashing started now
    known = StateCache(tmp_path / "s.db").lookup(scan(tree))
    assert "fresh.txt" not in known.known
    assert known.manifest_digest is None  # a tree with a racy file is never known whole


def test_a_removed_then_recreated_file_is_not_known(tree: Path, tmp_path: Path) -> None:
    state = StateCache(tmp_path / "s.db")
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    (tree / "a.txt").unlink()
    snap = scan(tree)
    looked = state.lookup(snap)
    assert "a.txt" not in looked.known
    assert looked.manifest_digest is None
    state.record(snap, looked.known, None, started_ns=LATER)
    (tree / "a.txt").write_text("another alpha\n")
    assert "a.txt" not in StateCache(tmp_path / "s.db").lookup(scan(tree)).known


def test_stored_digests_belong_to_the_last_listing_recorded(tree: Path, tmp_path: Path) -> None:
    """A file moved out and back (same inode, mtime, size) is not known from a stale entry.

    ``add`` trusts every known digest to be in the manifest the cache last recorded
    (``stored_manifest``); an entry of an older listing would break that promise.
    """
    state = StateCache(tmp_path / "s.db")
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    (tree / "a.txt").rename(tmp_path / "a.txt")
    snap = scan(tree)
    looked = state.lookup(snap)
    second = "blake3:" + "2" * 64
    state.record(snap, looked.known, second, started_ns=LATER)
    (tmp_path / "a.txt").rename(tree / "a.txt")
    again = StateCache(tmp_path / "s.db").lookup(scan(tree))
    assert "a.txt" not in again.known
    assert again.stored_manifest == second
    assert set(again.known) == {"run.sh", "sub/b.txt", "sub/deeper/c.bin"}


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path, tree: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    state = StateCache(path)
    assert state.lookup(scan(tree)).known == {}
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    assert len(StateCache(path).lookup(scan(tree)).known) == 4


def test_no_state_knows_nothing(tree: Path) -> None:
    state = NoState()
    state.record(scan(tree), _digests(tree), M, started_ns=LATER)
    assert state.lookup(scan(tree)).known == {}
    assert state.get_profile("x") is None


def test_open_state_falls_back_to_no_state(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    assert isinstance(open_state(blocker), NoState)
    assert isinstance(open_state(tmp_path), StateCache)


def test_profiles_are_cached_by_digest(tmp_path: Path) -> None:
    state = StateCache(tmp_path / "s.db")
    state.put_profile("ab" * 32, b'{"rows": 3}')
    assert StateCache(tmp_path / "s.db").get_profile("ab" * 32) == b'{"rows": 3}'


def test_a_few_changes_are_written_as_rows_and_merged_back(tree: Path, tmp_path: Path) -> None:
    state = StateCache(tmp_path / "s.db")
    snap = scan(tree)
    digests = _digests(tree)
    state.record(snap, digests, M, started_ns=LATER)
    (tree / "a.txt").write_text("changed\n")
    snap = scan(tree)
    looked = state.lookup(snap)
    digests = {**looked.known, "a.txt": "f" * 64}
    state.record(snap, digests, "blake3:" + "1" * 64, started_ns=LATER)
    rows = state._conn.execute("SELECT key, digest FROM tree_changes").fetchall()
    assert sorted(d is None for _, d in rows) == [
        False,
        True,
    ]  # the new state, the old one's tombstone
    assert all(k.startswith("a.txt\0") for k, _ in rows)
    again = StateCache(tmp_path / "s.db").lookup(scan(tree))
    assert again.known["a.txt"] == "f" * 64
    assert again.manifest_digest == "blake3:" + "1" * 64

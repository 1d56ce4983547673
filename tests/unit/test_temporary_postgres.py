"""When a temporary PostgreSQL directory counts as left behind (safe to delete)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from loopline.testing.postgres import _is_stale

if TYPE_CHECKING:
    from pathlib import Path


def _cluster(tmp_path: Path, pid_file: str | None, age: float = 0.0) -> Path:
    directory = tmp_path / "loopline-pg-x"
    (directory / "data").mkdir(parents=True)
    if pid_file is not None:
        path = directory / "data" / "postmaster.pid"
        path.write_text(pid_file)
        then = time.time() - age
        os.utime(path, (then, then))
    return directory


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_server_is_not_stale(tmp_path: Path) -> None:
    assert not _is_stale(_cluster(tmp_path, f"{os.getpid()}\n/data\n", age=7200))


def test_a_pid_file_being_written_or_just_left_by_initdb_is_not_stale(tmp_path: Path) -> None:
    # Another process's initdb or server start, seen mid-write or just after a
    # bootstrap backend exited: deleting it would break that process's cluster.
    assert not _is_stale(_cluster(tmp_path / "a", ""))
    assert not _is_stale(_cluster(tmp_path / "b", f"{_dead_pid()}\n"))


def test_an_old_pid_file_of_a_dead_server_is_stale(tmp_path: Path) -> None:
    assert _is_stale(_cluster(tmp_path, f"{_dead_pid()}\n", age=120))


def test_a_directory_without_a_server_is_stale_only_after_an_hour(tmp_path: Path) -> None:
    fresh = _cluster(tmp_path / "fresh", None)
    assert not _is_stale(fresh)
    old = _cluster(tmp_path / "old", None)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert _is_stale(old)

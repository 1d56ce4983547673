"""Long operations report progress (files and bytes), and Ctrl-C during them leaves nothing partial.

A real Ctrl-C raises KeyboardInterrupt in the main thread, which is the thread that
reports progress while workers hash and copy. So a :class:`Progress` that raises
KeyboardInterrupt from ``update`` interrupts the work exactly where Ctrl-C would,
deterministically; ``tests/e2e/test_data_cli.py`` also sends a real SIGINT to a
real ``loopline data add``.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from loopline.config import reset_settings
from loopline.data import api
from loopline.data.add import add
from loopline.data.checkout import checkout
from loopline.data.ingest import LocalSink, ingest
from loopline.data.progress import Progress
from loopline.data.scan import scan
from loopline.data.transfer import pull, push
from loopline.data.verify import verify

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.data.service import DataService


class Recorder(Progress):
    """Remembers every call; with ``interrupt_after``, raises KeyboardInterrupt on that update."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.started: tuple[int, int] | None = None
        self.updates: list[tuple[int, int]] = []
        self.finished = 0
        self.interrupt_after = interrupt_after

    def start(self, files: int, size: int) -> None:
        self.started = (files, size)

    def update(self, files: int, size: int) -> None:
        self.updates.append((files, size))
        if self.interrupt_after is not None and len(self.updates) >= self.interrupt_after:
            raise KeyboardInterrupt

    def finish(self) -> None:
        self.finished += 1


def _many(root: Path, count: int = 600, size: int = 3000) -> Path:
    for i in range(count):
        folder = root / f"part-{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04}.bin").write_bytes(os.urandom(size))
    return root


def _leftovers(root: Path) -> list[str]:
    """Temp files anywhere under ``root`` (names loopline gives writes in progress)."""
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and (p.name.endswith(".tmp") or p.parent.name == "tmp")
    ]


def test_add_checkout_verify_and_transfers_report_files_and_bytes(
    service: DataService, tmp_path: Path
) -> None:
    tree = _many(tmp_path / "tree")
    total = (600, 600 * 3000)
    seen = Recorder()
    add(service, tree, "watched", progress=seen)
    assert seen.started == total
    assert seen.updates[-1] == total
    assert seen.finished == 1

    for run in (
        lambda p: checkout(service, "watched@1", tmp_path / "out", progress=p),
        lambda p: push(service, "watched@1", str(tmp_path / "remote"), progress=p),
    ):
        seen = Recorder()
        run(seen)
        assert seen.started is not None
        assert seen.updates[-1][0] == seen.started[0] > 0
        assert seen.finished == 1

    seen = Recorder()
    report = verify(service, progress=seen)
    assert seen.started == (report.blobs_checked, report.bytes_checked)
    assert seen.updates[-1] == seen.started


def test_ctrl_c_during_add_records_nothing_and_leaves_no_temp_file(
    service: DataService, tmp_path: Path
) -> None:
    tree = _many(tmp_path / "tree", count=3000)
    with pytest.raises(KeyboardInterrupt):
        add(service, tree, "cancelled", progress=Recorder(interrupt_after=1), workers=2)
    assert service.latest("cancelled") is None
    assert _leftovers(service.settings.home / "blobs") == []
    assert verify(service).ok


def test_an_interrupted_ingest_sweeps_its_own_temp_files_only(tmp_path: Path) -> None:
    # The backstop behind each write's own cleanup: whatever this process left
    # half-written goes (one is made here as a missed cleanup would leave it), another
    # process's writes in progress stay.
    sink = LocalSink(tmp_path / "blobs")
    fd, mine = sink._temp()
    os.close(fd)
    theirs = tmp_path / "blobs" / "tmp" / f"i-{os.getpid() + 1}-1-0"
    theirs.write_bytes(b"another add, still writing")
    files = scan(_many(tmp_path / "tree", count=200)).files
    with pytest.raises(KeyboardInterrupt):
        ingest(files, {}, sink, progress=Recorder(interrupt_after=1), workers=2)
    assert not os.path.exists(mine)
    assert theirs.exists()


def test_ctrl_c_during_checkout_leaves_no_partial_folder(
    service: DataService, tmp_path: Path
) -> None:
    add(service, _many(tmp_path / "tree", count=3000), "big")
    dest = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        checkout(service, "big@1", dest, progress=Recorder(interrupt_after=1), workers=2)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ctrl_c_during_pull_records_nothing(
    service: DataService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(service, _many(tmp_path / "tree", count=800), "shared")
    remote = str(tmp_path / "remote")
    push(service, "shared@1", remote)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "empty-home"))  # another machine
    reset_settings()
    api.close()
    fresh = api.get_service()
    with pytest.raises(KeyboardInterrupt):
        pull(fresh, "shared@1", remote, progress=Recorder(interrupt_after=1))
    assert fresh.latest("shared") is None
    assert pull(fresh, "shared@1", remote).ref == "shared@1"  # and a rerun completes it


def test_the_cli_draws_progress_bars_on_a_terminal(tmp_path: Path) -> None:
    tree = _many(tmp_path / "tree", count=600)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "loopline.cli.data", "add", str(tree), "-n", "shown"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0, drawn
    assert b"Adding" in drawn
    assert b"600 files" in drawn  # the count of files next to the bar of bytes


def test_ctrl_c_inside_a_write_takes_effect_after_it() -> None:
    from loopline.data._pool import interrupts_deferred

    steps: list[str] = []

    def write() -> None:
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered mid-write
            steps.append("finished")  # the write completes (or its cleanup runs) first

    with pytest.raises(KeyboardInterrupt):
        write()
    assert steps == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

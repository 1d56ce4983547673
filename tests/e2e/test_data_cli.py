"""``loopline data``: every command through typer's runner, the fast path as a real process,
and the faults a real process can meet (SIGKILL mid-add, two concurrent adds).

The sub-app is tested on its own (``loopline.cli.data.app``); once the lead registers
it under ``loopline data`` the same commands answer there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import loopline.data as data
from loopline.cli.data import app
from loopline.data.api import get_service

Invoke = Callable[..., Result]


@pytest.fixture
def cli() -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args], prog_name="loopline data")

    return invoke


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "a.txt").write_text("alpha\n")
    (root / "table.csv").write_text("x,label\n1,a\n2,b\n3,a\n")
    return root


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_versions_show_ls(cli: Invoke, folder: Path) -> None:
    first = cli("add", folder, "--name", "work", "-m", "first", "--tag", "raw")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("work@1 recorded: 2 files")
    again = cli("add", folder, "-n", "work")
    assert again.stdout.startswith("work@1 unchanged")
    (folder / "raw" / "b.txt").write_text("bravo\n")
    assert cli("add", folder, "-n", "work").stdout.startswith("work@2 recorded: 3 files")
    listing = _json(cli("versions", "work", "--json"))
    assert [(v["version"], v["tags"], v["message"]) for v in listing] == [  # type: ignore[union-attr]
        (1, ["raw"], "first"),
        (2, [], ""),
    ]
    table = cli("versions", "work")
    assert "first" in table.stdout
    assert "raw" in table.stdout
    shown = _json(cli("show", "work@raw", "--json"))
    assert shown["ref"] == "work@1"  # type: ignore[index]
    assert shown["schema"]["table.csv"]["rows"] == 3  # type: ignore[index]
    text = cli("show", "work@1")
    assert "table.csv (csv, 3 rows)" in text.stdout
    assert "label" in text.stdout
    files = _json(cli("ls", "work", "raw", "--json"))
    assert [f["path"] for f in files] == ["raw/a.txt", "raw/b.txt"]  # type: ignore[index]
    assert "3 files" in cli("ls", "work@2").stdout
    assert cli("ls", "work@2", "nope").exit_code == 1
    datasets = _json(cli("list", "--json"))
    assert [(d["name"], d["latest"]) for d in datasets] == [("work", 2)]  # type: ignore[index]


def test_status_and_diff(cli: Invoke, folder: Path) -> None:
    cli("add", folder, "-n", "work")
    clean = cli("status", "work")
    assert clean.exit_code == 0
    assert "up to date with work@1" in clean.stdout
    (folder / "table.csv").write_text("x,label,extra\n1,a,0\n")
    (folder / "new.txt").write_text("n")
    dirty = cli("status", "work")
    assert dirty.exit_code == 0
    assert "1 added, 1 modified" in dirty.stdout
    assert cli("status", "work", "--exit-code").exit_code == 3
    status = _json(cli("status", "work", folder, "--json"))
    assert status["clean"] is False  # type: ignore[index]
    cli("add", folder, "-n", "work")
    result = _json(cli("diff", "work@1", "work@2", "--json"))
    assert [(c["path"], c["change"]) for c in result["changes"]] == [  # type: ignore[index]
        ("new.txt", "added"),
        ("table.csv", "modified"),
    ]
    (table,) = result["tables"]  # type: ignore[index]
    assert (table["old_rows"], table["new_rows"], table["added_columns"]) == (3, 1, ["extra"])
    text = cli("diff", "work@1", "work@latest")
    assert "Tabular files" in text.stdout
    assert "+extra" in text.stdout


def test_checkout_tag_and_lineage(cli: Invoke, folder: Path, tmp_path: Path) -> None:
    cli("add", folder, "-n", "work")
    out = tmp_path / "out"
    done = cli("checkout", "work@1", out)
    assert done.exit_code == 0
    assert "2 files" in done.stdout
    assert (out / "raw" / "a.txt").read_text() == "alpha\n"
    refused = cli("checkout", "work@1", out)
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    assert cli("checkout", "work@1", out, "--force").exit_code == 0
    linked = _json(cli("checkout", "work@1", tmp_path / "linked", "--link", "--json"))
    assert linked["methods"] == {"hardlink": 2}  # type: ignore[index]
    assert cli("tag", "work@1", "prod").stdout.strip() == "work@prod -> 1"
    (folder / "c.txt").write_text("c")
    cli("add", folder, "-n", "work")
    assert cli("tag", "work@2", "prod").stdout.strip() == "work@prod moved 1 -> 2"
    history = _json(cli("tags", "work", "--json"))
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]  # type: ignore[index]
    data.log_input("work@2", run_id="abc123", context="training")
    trace = _json(cli("lineage", "work@2", "--json"))
    assert trace["runs"][0]["run_id"] == "abc123"  # type: ignore[index]
    by_run = cli("lineage", "--run", "abc123")
    assert "work@2" in by_run.stdout
    assert "training" in by_run.stdout
    assert cli("lineage").exit_code == 2


def test_verify_and_gc(cli: Invoke, folder: Path) -> None:
    version = data.add(folder, "work")
    assert cli("verify").exit_code == 0
    orphan = get_service().blobs.put_bytes(b"orphan")
    dry = _json(cli("gc", "--dry-run", "--grace", "0", "--json"))
    assert dry["blobs_deleted"] == 1  # type: ignore[index]
    assert get_service().blobs.exists(orphan)
    assert "deleted 1 blob" in cli("gc", "--grace", "0").stdout
    entry = version.files[0]
    blob = Path(get_service().blobs.object_path(entry.blob))  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b"x" * entry.size)
    broken = cli("verify")
    assert broken.exit_code == 3
    assert f"corrupt: blake3:{entry.digest} at {blob}" in broken.output
    assert cli("verify", "--json").exit_code == 3


def test_errors_are_messages_with_exit_codes(cli: Invoke, folder: Path, tmp_path: Path) -> None:
    missing = cli("add", tmp_path / "nope", "-n", "x")
    assert missing.exit_code == 1
    assert "error:" in missing.output
    assert "does not exist" in missing.output
    assert "Traceback" not in missing.output
    assert cli("add", folder, "-n", "bad name").exit_code == 1
    assert cli("add", folder).exit_code == 2  # --name is required
    assert cli("show", "work@3").exit_code == 1
    assert cli("show", "work@@").exit_code == 1
    assert cli("diff", "x").exit_code == 2


# -- real processes ----------------------------------------------------------------------------
def _loopline_data(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli.data", *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
        env=os.environ,
        timeout=120,
    )


def test_fast_path_commands_in_a_real_process(folder: Path) -> None:
    first = _loopline_data("add", folder, "--name=work", "-t", "raw", "--no-profile")
    assert first.stdout.startswith("work@1 recorded: 2 files"), first.stderr
    assert first.stdout.rstrip().endswith("tagged raw")
    assert _loopline_data("add", folder, "-n", "work").stdout.startswith("work@1 unchanged")
    assert "up to date" in _loopline_data("status", "work").stdout
    (folder / "new.txt").write_text("n")
    dirty = _loopline_data("status", "work", folder, "--exit-code", check=False)
    assert dirty.returncode == 3
    assert "1 added" in dirty.stdout
    as_json = json.loads(_loopline_data("add", folder, "-n", "work", "--json").stdout)
    assert as_json["version"] == 2
    error = _loopline_data("add", folder / "missing", "-n", "work", check=False)
    assert error.returncode == 1
    assert error.stderr.startswith("error: ")
    usage = _loopline_data("add", folder, check=False)  # no --name: typer explains
    assert usage.returncode == 2
    assert "--name" in usage.stderr


_LOADED_BY_MAIN = (
    "import sys; from loopline.cli.main import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "heavy = ('typer', 'click', 'pydantic', 'rich', 'orjson', 'sqlalchemy', 'pandas')\n"
    "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
)


def test_the_console_entry_point_answers_add_and_status_without_heavy_imports(
    folder: Path,
) -> None:
    """``loopline data add|status`` on an unchanged tree loads no typer, pydantic, orjson..."""
    # Files changed within the second before an add are hashed again by the next one
    # (their stat could hide a later change): these are older, as a settled tree's are.
    for path in folder.rglob("*"):
        os.utime(path, (time.time() - 60, time.time() - 60))
    _loopline_data("add", folder, "-n", "lean")
    for args in (["add", str(folder), "-n", "lean"], ["status", "lean"]):
        done = subprocess.run(
            [sys.executable, "-c", _LOADED_BY_MAIN, "data", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env=os.environ,
        )
        assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
        assert "unchanged" in done.stdout or "up to date" in done.stdout


def _make_tree(root: Path, files: int, big_mib: int) -> None:
    for i in range(files):
        folder = root / f"d{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(1024 + i % 3000))
    (root / "big.bin").write_bytes(os.urandom(big_mib << 20))


_ADD = (
    "import sys, loopline.data as d; v = d.add(sys.argv[1], sys.argv[2]); print(v.ref, flush=True)"
)


def test_sigkill_at_any_point_leaves_no_partial_version_and_no_corrupt_blob(tmp_path: Path) -> None:
    tree = tmp_path / "big-tree"
    _make_tree(tree, files=3000, big_mib=96)
    state = get_service().settings.home / "data-state.db"
    finished = 0
    for delay in (0.05, 0.2, 0.35, 0.5, 0.7, 0.9, 1.2, 1.6):
        for suffix in ("", "-wal", "-shm"):  # no state cache: every attempt hashes and stores
            Path(f"{state}{suffix}").unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", _ADD, str(tree), "killed"],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        finished += proc.returncode == 0
        report = data.verify()
        assert report.corrupt == [], f"a corrupt blob after SIGKILL at {delay} s"
        for version in data.versions("killed") if data.list_datasets() else []:
            assert data.verify(version.ref).ok  # a version exists only when it is complete
    assert finished < 8, "every add finished before its kill: the tree is too small to test"
    final = data.add(tree, "killed")
    assert data.verify(final.ref).ok
    assert data.checkout(final.ref, tmp_path / "back").files == 3001


def test_ctrl_c_stops_an_add_with_nothing_recorded(tmp_path: Path) -> None:
    tree = tmp_path / "big-tree"
    _make_tree(tree, files=2000, big_mib=128)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli.data", "add", str(tree), "-n", "stopped"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    started = get_service().settings.home / "blobs" / "tmp"  # made when storing begins
    deadline = time.monotonic() + 30
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # pragma: no cover - the machine outran the signal
        pytest.skip(f"the add finished before Ctrl-C: {out}")
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert data.list_datasets() == []
    tmp = get_service().settings.home / "blobs" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == [], err
    assert data.verify().ok


_WAIT_AND_ADD = (
    "import os, sys, time, loopline.data as d\n"
    "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
    "print(d.add(sys.argv[1], sys.argv[2]).ref)\n"
)


def test_two_concurrent_adds_make_two_consecutive_versions(tmp_path: Path) -> None:
    trees = []
    for k in range(2):
        root = tmp_path / f"tree{k}"
        _make_tree(root, files=400, big_mib=8)
        (root / "who.txt").write_text(f"writer {k}")
        trees.append(root)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WAIT_AND_ADD, str(root), "shared", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        for root in trees
    ]
    time.sleep(1.0)  # both are waiting
    go.write_text("")
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    refs = sorted(out.strip() for out, _ in outputs)
    assert refs == ["shared@1", "shared@2"]
    versions = data.versions("shared")
    assert [v.version for v in versions] == [1, 2]
    sources = {v.source for v in versions}
    assert sources == {os.path.realpath(t) for t in trees}
    assert data.verify().ok

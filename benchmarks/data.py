"""Data versioning, loopline vs DVC: command-line wall time of both, on the same data.

1. ``add`` of one 1 GiB file of random bytes (a fresh store each time);
2. ``add`` of a folder of 20,000 files of 1-4 KiB in 100 subfolders;
3. ``add`` again with nothing changed, and ``status`` with nothing changed;
4. ``add`` after changing 10 of the 20,000 files;
5. ``add`` of the same 20,000 files through a ``loopline server`` on 127.0.0.1
   (``LOOPLINE_TRACKING_URI=http://...``: hashed here, uploaded in batches, recorded
   there; a fresh server store and client home each round), then ``checkout`` of
   that version into a new folder (downloaded in batches). No peer figure: DVC's
   counterpart would be ``dvc push``/``pull`` to an HTTP remote, which needs a
   server of another kind.

Both sides run their CLI as a subprocess (``loopline data ...`` or, before the
sub-app is registered, ``python -m loopline.cli.data ...``; ``dvc ...`` in a
``dvc init --no-scm`` folder), each timed from start to exit, median of
``repeats`` runs. Before every timed command the input is read once (so both find
it in the page cache) and ``sync`` flushes earlier writes (so neither pays for
the other's write-back). The stores of the 1 GiB file are deleted after each
round (so the next one reuses page cache rather than touching fresh memory,
which costs a virtual machine dearly); those of the 20,000 files only when the
item ends: on an ext4 without a journal, creating files right after deleting many
is slow for about 30 s (the allocator skips recently deleted inodes), which would
tax whichever round follows a deletion. The sub-second commands (re-add and status
with nothing changed) run ``quick_repeats`` times per round, since a shared
machine's noise is largest relative to them. Neither side fsyncs by default; loopline's
``LOOPLINE_FSYNC=1`` is measured separately, for the 1 GiB file.

Run one side: ``python benchmarks/data.py --side dvc --json``; both sides and the
table: ``python benchmarks/run.py --only data``.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script, possibly by a peer's interpreter
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import TYPE_CHECKING

from benchmarks._harness import (
    Goal,
    Progress,
    Results,
    Row,
    Server,
    figure,
    free_port,
    run_item,
    scaled,
    side_main,
    temp_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NAME = "data"
PEERS = {"dvc": ["dvc==3.67.*"]}
PEER_ENV = {"dvc": {"DVC_NO_ANALYTICS": "1", "DVC_IGNORE_ISATTY": "true"}}
PACKAGES = {"loopline": ["loopline", "blake3"], "dvc": ["dvc", "dvc-data"]}

SIZES = {
    "big_mib": 1024,
    "small_files": 20_000,
    "changed_files": 10,
    "repeats": 3,
    "quick_repeats": 3,
}
QUICK_FLOORS = {"changed_files": 10, "repeats": 2, "big_mib": 64, "quick_repeats": 1}
COMMAND_TIMEOUT = 600.0

ROWS = [
    Row(
        label="add one {big_mib:,} MiB file (fresh store)",
        ours="add_big_s",
        peer="dvc",
        theirs="add_big_s",
        higher_is_better=False,
        goal=Goal("speedup", 5, ">= 5x DVC"),
    ),
    Row(
        label="  the same with LOOPLINE_FSYNC=1 (power-loss durability)",
        ours="add_big_fsync_s",
        peer="dvc",
        theirs="add_big_s",
        higher_is_better=False,
    ),
    Row(
        label="add {small_files:,} files of 1-4 KiB (fresh store)",
        ours="add_small_s",
        peer="dvc",
        theirs="add_small_s",
        higher_is_better=False,
        goal=Goal("speedup", 10, ">= 10x DVC"),
    ),
    Row(
        label="re-add {small_files:,} files, nothing changed",
        ours="readd_s",
        peer="dvc",
        theirs="readd_s",
        higher_is_better=False,
        goal=Goal("max", 0.3, "< 0.3 s"),
    ),
    Row(
        label="status of {small_files:,} files, nothing changed",
        ours="status_s",
        peer="dvc",
        theirs="status_s",
        higher_is_better=False,
        goal=Goal("max", 0.3, "< 0.3 s"),
    ),
    Row(
        label="add {small_files:,} files of 1-4 KiB through a loopline server (fresh store)",
        ours="server_add_small_s",
        peer="dvc",
        theirs=None,
        higher_is_better=False,
    ),
    Row(
        label="checkout those {small_files:,} files from the server (new folder)",
        ours="server_checkout_small_s",
        peer="dvc",
        theirs=None,
        higher_is_better=False,
    ),
    Row(
        label="add after changing {changed_files:,} of {small_files:,} files",
        ours="change_add_s",
        peer="dvc",
        theirs="change_add_s",
        higher_is_better=False,
        goal=Goal("speedup", 10, ">= 10x DVC"),
    ),
]


def sizes_for(quick: bool) -> dict[str, int]:
    return scaled(SIZES, quick, QUICK_FLOORS)


# -- data and timing shared by both sides ---------------------------------------------------
def make_big_file(path: Path, mib: int) -> None:
    """``mib`` MiB of pseudo-random bytes (incompressible, same on both sides)."""
    rng = random.Random(11)
    block = rng.randbytes(1 << 20)
    with open(path, "wb") as fh:
        for i in range(mib):
            fh.write(block[i % 997 :] + block[: i % 997])


def make_small_files(root: Path, count: int) -> list[Path]:
    """``count`` files of 1-4 KiB in 100 subfolders; their paths."""
    rng = random.Random(7)
    paths = []
    for i in range(count):
        folder = root / f"part-{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"record-{i:06d}.bin"
        path.write_bytes(rng.randbytes(rng.randint(1024, 4096)))
        paths.append(path)
    return paths


def change_files(paths: list[Path], count: int, round_: int) -> None:
    """Rewrite ``count`` files spread over the tree (new content, new sizes)."""
    step = max(1, len(paths) // count)
    for path in paths[::step][:count]:
        path.write_bytes(f"changed in round {round_}\n".encode() * (50 + round_))


def age_tree(root: Path, seconds: float = 5.0) -> None:
    """Set every file's mtime a few seconds back, as files that were not just written.

    A state cache does not trust files modified within its timestamp granularity
    before it looked at them (they could change again unseen); files made
    by a benchmark a moment before the command are exactly those.
    """
    stamp = time.time() - seconds
    for folder, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(folder, name), (stamp, stamp))


def warm(path: Path) -> None:
    """Read a file or tree once, so the timed command finds it in the page cache."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as fh:
            while fh.read(8 << 20):
                pass


def timed(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one command, after a ``sync``; raises when it fails."""
    os.sync()
    t0 = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}"
        )
    return elapsed


def median_figure(samples: list[float], note: str = "") -> dict[str, object]:
    spread = f"runs: {', '.join(f'{s:.2f}' for s in samples)} s"
    return figure(
        statistics.median(samples), "s", len(samples), f"{spread}{'; ' + note if note else ''}"
    )


# == loopline ==================================================================================
def loopline_cli() -> tuple[list[str], str]:
    """The command that runs ``loopline data``, and how it is reached (for the notes)."""
    exe = Path(sys.executable).with_name("loopline")
    try:
        from loopline.cli import main

        registered = any(
            group.name == "data" for group in getattr(main.app, "registered_groups", [])
        )
    except ImportError:
        registered = False
    if registered and exe.exists():
        return [str(exe), "data"], "loopline data"
    return [sys.executable, "-m", "loopline.cli.data"], "python -m loopline.cli.data"


def _loopline_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["LOOPLINE_HOME"] = str(home)
    env.update(extra)
    return env


def _fresh_loopline_home(base: Path, tag: str) -> Path:
    """A new store with its schema in place (``dvc init`` is not timed either)."""
    home = base / f"home-{tag}"
    from loopline.store.metadata import Database

    Database(f"sqlite:///{home / 'loopline.db'}").close()
    return home


def loopline_big(sizes: dict[str, int], progress: Progress) -> Results:
    cli, how = loopline_cli()
    results: Results = {}
    with temp_dir("loopline-bench-data-") as tmp:
        base = Path(tmp)
        big = base / "big.bin"
        make_big_file(big, sizes["big_mib"])
        for key, extra in (("add_big_s", {}), ("add_big_fsync_s", {"LOOPLINE_FSYNC": "1"})):
            samples = []
            for i in range(sizes["repeats"]):
                home = _fresh_loopline_home(base, f"{key}-{i}")
                warm(big)
                samples.append(
                    timed(
                        [*cli, "add", str(big), "-n", "big"],
                        cwd=base,
                        env=_loopline_env(home, **extra),
                    )
                )
                shutil.rmtree(home)  # one file: deleting it recycles its page cache
            results[key] = median_figure(samples, how)
            progress(f"{key}: {results[key]['value']:.2f} s")
    return results


def loopline_small(sizes: dict[str, int], progress: Progress) -> Results:
    cli, how = loopline_cli()
    n, repeats = sizes["small_files"], sizes["repeats"]
    adds: list[float] = []
    readds: list[float] = []
    statuses: list[float] = []
    changes: list[float] = []
    with temp_dir("loopline-bench-data-") as tmp:
        base = Path(tmp)
        tree = base / "records"
        paths = make_small_files(tree, n)
        age_tree(tree)
        for i in range(repeats):
            home = _fresh_loopline_home(base, f"small-{i}")
            env = _loopline_env(home)
            warm(tree)
            adds.append(timed([*cli, "add", str(tree), "-n", "records"], cwd=base, env=env))
            for _ in range(sizes["quick_repeats"]):
                readds.append(timed([*cli, "add", str(tree), "-n", "records"], cwd=base, env=env))
                statuses.append(timed([*cli, "status", "records"], cwd=base, env=env))
            change_files(paths, sizes["changed_files"], i)
            changes.append(timed([*cli, "add", str(tree), "-n", "records"], cwd=base, env=env))
            progress(
                f"round {i + 1}: add {adds[-1]:.2f} s, re-add {readds[-1]:.3f} s, "
                f"status {statuses[-1]:.3f} s, change+add {changes[-1]:.3f} s"
            )
    return {
        "add_small_s": median_figure(adds, how),
        "readd_s": median_figure(readds, how),
        "status_s": median_figure(statuses, how),
        "change_add_s": median_figure(changes, how),
    }


def loopline_server_small(sizes: dict[str, int], progress: Progress) -> Results:
    """``add`` of the small files through a server, then ``checkout`` back (fresh each round)."""
    cli, how = loopline_cli()
    adds: list[float] = []
    checkouts: list[float] = []
    with temp_dir("loopline-bench-data-server-") as tmp:
        base = Path(tmp)
        tree = base / "records"
        make_small_files(tree, sizes["small_files"])
        age_tree(tree)
        for i in range(sizes["repeats"]):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            serve = (
                "from loopline.server.run import serve; "
                f"serve(port={port}, log_level='warning', access_log=False)"
            )
            with Server(
                [sys.executable, "-c", serve],
                url=url,
                env=_loopline_env(base / f"server-{i}"),
                log_path=str(base / f"server-{i}.log"),
            ) as server:
                server.wait_healthy("/health", 120)  # start-up and migration: not timed
                env = _loopline_env(base / f"client-{i}", LOOPLINE_TRACKING_URI=url)
                warm(tree)
                adds.append(timed([*cli, "add", str(tree), "-n", "records"], cwd=base, env=env))
                out = base / f"out-{i}"  # kept until the end: see the module's note on deletes
                checkouts.append(
                    timed([*cli, "checkout", "records@1", str(out)], cwd=base, env=env)
                )
            progress(f"round {i + 1}: add {adds[-1]:.2f} s, checkout {checkouts[-1]:.2f} s")
    note = f"{how}, server: one uvicorn worker on 127.0.0.1"
    return {
        "server_add_small_s": median_figure(adds, note),
        "server_checkout_small_s": median_figure(checkouts, note),
    }


def compile_loopline() -> None:
    """Byte-compile loopline as ``pip install`` does for a wheel (and did for DVC's venv).

    Run from a source checkout with ``PYTHONDONTWRITEBYTECODE`` set, every command
    would otherwise compile each module it imports again: about 50 ms that no
    installed copy pays.
    """
    import compileall

    import loopline

    compileall.compile_dir(os.path.dirname(loopline.__file__), quiet=1)


def run_loopline(sizes: dict[str, int], progress: Progress) -> Results:
    compile_loopline()
    results: Results = {}
    items: list[tuple[Callable[[dict[str, int], Progress], Results], list[str]]] = [
        (loopline_big, ["add_big_s", "add_big_fsync_s"]),
        (loopline_small, ["add_small_s", "readd_s", "status_s", "change_add_s"]),
        (loopline_server_small, ["server_add_small_s", "server_checkout_small_s"]),
    ]
    for fn, keys in items:
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


# == DVC =======================================================================================
def _dvc() -> list[str]:
    found = shutil.which("dvc")
    return [found] if found else [sys.executable, "-m", "dvc"]


def _dvc_repo(base: Path, tag: str) -> Path:
    repo = base / f"repo-{tag}"
    repo.mkdir()
    subprocess.run([*_dvc(), "init", "--no-scm", "-q"], cwd=repo, check=True, capture_output=True)
    subprocess.run(
        [*_dvc(), "config", "core.analytics", "false"], cwd=repo, check=True, capture_output=True
    )
    return repo


def dvc_big(sizes: dict[str, int], progress: Progress) -> Results:
    samples = []
    with temp_dir("dvc-bench-data-") as tmp:
        base = Path(tmp)
        source = base / "big.bin"
        make_big_file(source, sizes["big_mib"])
        for i in range(sizes["repeats"]):
            repo = _dvc_repo(base, f"big-{i}")
            shutil.copyfile(source, repo / "big.bin")
            warm(repo / "big.bin")
            samples.append(timed([*_dvc(), "add", "-q", "big.bin"], cwd=repo))
            shutil.rmtree(repo)  # one file: deleting it recycles its page cache
            progress(f"add big, round {i + 1}: {samples[-1]:.2f} s")
    return {"add_big_s": median_figure(samples, "dvc add")}


def dvc_small(sizes: dict[str, int], progress: Progress) -> Results:
    n, repeats = sizes["small_files"], sizes["repeats"]
    adds: list[float] = []
    readds: list[float] = []
    statuses: list[float] = []
    changes: list[float] = []
    with temp_dir("dvc-bench-data-") as tmp:
        base = Path(tmp)
        for i in range(repeats):
            repo = _dvc_repo(base, f"small-{i}")
            paths = make_small_files(repo / "records", n)
            age_tree(repo / "records")
            warm(repo / "records")
            adds.append(timed([*_dvc(), "add", "-q", "records"], cwd=repo))
            for _ in range(sizes["quick_repeats"]):
                readds.append(timed([*_dvc(), "add", "-q", "records"], cwd=repo))
                statuses.append(timed([*_dvc(), "status", "-q"], cwd=repo))
            change_files(paths, sizes["changed_files"], i)
            changes.append(timed([*_dvc(), "add", "-q", "records"], cwd=repo))
            progress(
                f"round {i + 1}: add {adds[-1]:.2f} s, re-add {readds[-1]:.2f} s, "
                f"status {statuses[-1]:.2f} s, change+add {changes[-1]:.2f} s"
            )
    return {
        "add_small_s": median_figure(adds, "dvc add"),
        "readd_s": median_figure(readds, "dvc add"),
        "status_s": median_figure(statuses, "dvc status"),
        "change_add_s": median_figure(changes, "dvc add"),
    }


def run_dvc(sizes: dict[str, int], progress: Progress) -> Results:
    for name, value in PEER_ENV["dvc"].items():
        os.environ.setdefault(name, value)
    results: Results = {}
    items: list[tuple[Callable[[dict[str, int], Progress], Results], list[str]]] = [
        (dvc_big, ["add_big_s"]),
        (dvc_small, ["add_small_s", "readd_s", "status_s", "change_add_s"]),
    ]
    for fn, keys in items:
        run_item(results, keys, progress, lambda fn=fn: fn(sizes, progress))
    return results


SIDES = {"loopline": run_loopline, "dvc": run_dvc}

if __name__ == "__main__":
    side_main(NAME, SIDES, sizes_for, PACKAGES)

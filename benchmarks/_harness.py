"""What every benchmark module shares: results, goals, time bounds, servers, the side CLI.

Standard library only: this module also runs inside each peer's own environment
(``.bench/<peer>-venv``), where loopline is not installed.

A benchmark module (``benchmarks/tracking.py`` and its siblings) exposes:

- ``NAME``: its name in ``run.py --only``;
- ``PEERS``: peer name -> pip requirements of the peer's environment;
- ``SIZES``: every count it uses, in one place; :func:`scaled` divides them for ``--quick``;
- ``SIDES``: side name (``"loopline"`` and each peer) -> ``fn(sizes, progress) -> Results``;
- ``ROWS``: the table's rows, each pairing a loopline figure with a peer figure and a goal;
- a ``__main__`` block calling :func:`side_main`, so that
  ``python benchmarks/NAME.py --side PEER --json`` prints that side's results as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "Deadline",
    "Goal",
    "Results",
    "Row",
    "Server",
    "env_info",
    "error_figure",
    "figure",
    "free_port",
    "percentile",
    "progress_to_stderr",
    "run_item",
    "scaled",
    "side_main",
    "temp_dir",
]

Progress = Callable[[str], None]
Results = dict[str, dict[str, Any]]
"""Figure key -> ``{"value", "unit", "n", "note"}`` or ``{"error": "..."}``."""

QUICK_DIVISOR = 10
PGID_FILE_VAR = "BENCH_SERVER_PGIDS"
"""Names a file where each :class:`Server` started by a peer side records its group."""


# -- goals and table rows ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Goal:
    """What a row must reach.

    ``kind``: ``"speedup"`` (loopline at least ``target`` times better than the peer),
    ``"max"`` (loopline's figure at most ``target``), ``"min"`` (at least ``target``).
    """

    kind: str
    target: float
    text: str

    def check(self, ours: float | None, speedup: float | None) -> bool | None:
        if self.kind == "speedup":
            return None if speedup is None else speedup >= self.target
        if ours is None:
            return None
        return ours <= self.target if self.kind == "max" else ours >= self.target


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a loopline figure, the peer's figure, and the goal.

    ``higher_is_better`` decides how the speedup is computed (ours/theirs for rates,
    theirs/ours for durations), so a speedup above 1 always means loopline is ahead.
    """

    label: str
    ours: str
    peer: str
    theirs: str | None
    higher_is_better: bool
    goal: Goal | None = None

    def evaluate(self, ours: Results, theirs: Results) -> dict[str, Any]:
        mine = ours.get(self.ours, {})
        other = theirs.get(self.theirs, {}) if self.theirs else {}
        a, b = mine.get("value"), other.get("value")
        speedup = None
        if a and b:
            speedup = a / b if self.higher_is_better else b / a
        verdict = self.goal.check(a, speedup) if self.goal else None
        return {
            "label": self.label,
            "peer": self.peer,
            "loopline": mine,
            "theirs": other,
            "speedup": speedup,
            "goal": self.goal.text if self.goal else None,
            "pass": verdict,
        }


# -- measuring -----------------------------------------------------------------------
@dataclass(slots=True)
class Deadline:
    """A time bound for a loop: ``expired()`` once ``seconds`` have passed."""

    seconds: float
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = time.perf_counter() + self.seconds

    def expired(self) -> bool:
        return time.perf_counter() > self.end

    def left(self) -> float:
        return max(0.0, self.end - time.perf_counter())


def percentile(samples: list[float] | list[int], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; ``samples`` need not be sorted.

    >>> percentile([5, 1, 3, 2, 4], 50)
    3.0
    >>> percentile(list(range(1, 101)), 99)
    99.0
    """
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered) - 1e-9))
    return float(ordered[min(rank, len(ordered)) - 1])


def figure(value: float, unit: str, n: int, note: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "n": n, "note": note}


def scaled(
    sizes: Mapping[str, int], quick: bool, floors: Mapping[str, int] | None = None
) -> dict[str, int]:
    """``sizes``, divided by :data:`QUICK_DIVISOR` for ``--quick`` (never below ``floors``)."""
    if not quick:
        return dict(sizes)
    floors = floors or {}
    return {k: max(v // QUICK_DIVISOR, floors.get(k, 1)) for k, v in sizes.items()}


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[str]:
    """A temporary folder removed afterwards, even when a server left files open."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as path:
        yield path


# -- the machine and the software ------------------------------------------------------
def env_info(packages: list[str]) -> dict[str, Any]:
    """CPU count, Python, OS and the versions of ``packages`` (the side's own)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    import sqlite3

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


# -- servers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process in its own process group: started, awaited, killed with its workers.

    Use as a context manager; on exit the whole group gets SIGTERM, then SIGKILL.
    Its output goes to ``log_path`` (read it with :meth:`log_tail` when it fails).
    """

    def __init__(
        self,
        argv: list[str],
        *,
        url: str,
        env: Mapping[str, str] | None,
        log_path: str,
        cwd: str | None = None,
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.url = url
        self.env = dict(env) if env is not None else None
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    def __enter__(self) -> Server:
        log = open(self.log_path, "ab")  # closed below: the child keeps its own copy
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        record = os.environ.get(PGID_FILE_VAR)
        if record:  # lets run.py kill this group should this side itself be killed
            with open(record, "a") as fh:
                fh.write(f"{self.proc.pid}\n")
        return self

    def wait_healthy(self, path: str, timeout: float) -> float:
        """Poll ``GET url+path`` until it answers 200; the seconds it took since start."""
        assert self.proc is not None
        started = time.perf_counter()
        deadline = Deadline(timeout)
        while not deadline.expired():
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"server exited with code {code}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        self.startup_seconds = time.perf_counter() - started
                        return self.startup_seconds
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not healthy after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-lines:]).strip()
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                # Workers may outlive the parent briefly: make sure the group is gone.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return
            except subprocess.TimeoutExpired:
                continue

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- running one side --------------------------------------------------------------------
def progress_to_stderr(side: str) -> Progress:
    def report(message: str) -> None:
        print(f"[{side}] {message}", file=sys.stderr, flush=True)

    return report


def error_figure(exc: BaseException, progress: Progress, *keys: str) -> dict[str, Any]:
    """Report a failed item (traceback to stderr) and the figure that stands for it."""
    detail = f"{type(exc).__name__}: {exc}".strip()
    progress(f"FAILED {', '.join(keys)}: {detail}")
    traceback.print_exception(exc, file=sys.stderr)
    return {"error": detail[:500]}


def run_item(
    results: Results, keys: list[str], progress: Progress, fn: Callable[[], Results]
) -> None:
    """Run one work item into ``results``; a failure is recorded under ``keys`` and reported."""
    try:
        results.update(fn())
    except Exception as exc:
        failed = error_figure(exc, progress, *keys)
        for key in keys:
            results.setdefault(key, failed)


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: servers are stopped


def side_main(
    name: str,
    sides: Mapping[str, Callable[[dict[str, int], Progress], Results]],
    sizes_for: Callable[[bool], dict[str, int]],
    packages: Mapping[str, list[str]],
) -> None:
    """``python benchmarks/NAME.py --side SIDE [--quick] [--json]``."""
    parser = argparse.ArgumentParser(description=f"Run one side of the {name} benchmark.")
    parser.add_argument("--side", required=True, choices=sorted(sides))
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    progress = progress_to_stderr(args.side)
    out = sys.stdout
    # Whatever the benchmarked library prints must not mix with the JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        sizes = sizes_for(args.quick)
        results = sides[args.side](sizes, progress)
        document = {
            "benchmark": name,
            "side": args.side,
            "sizes": sizes,
            "env": env_info(packages.get(args.side, [])),
            "results": results,
        }
    if args.json:
        out.write(json.dumps(document) + "\n")
    else:
        for key, value in results.items():
            out.write(f"{key}: {value}\n")
    out.flush()


@contextlib.contextmanager
def loopline_store(home: str, tracking_uri: str | None = None) -> Iterator[Any]:
    """Point loopline's SDK at a fresh store (or a server) for one item; restore after.

    Yields the ``loopline`` module. Imports loopline lazily: this harness also runs in
    the peers' interpreters, where loopline is not installed.
    """
    import gc

    import loopline
    from loopline.config import reset_settings

    names = ("LOOPLINE_HOME", "LOOPLINE_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["LOOPLINE_HOME"] = home
    os.environ.pop("LOOPLINE_ARTIFACTS_URI", None)
    if tracking_uri:
        os.environ["LOOPLINE_TRACKING_URI"] = tracking_uri
    else:
        os.environ.pop("LOOPLINE_TRACKING_URI", None)
    reset_settings()
    loopline.set_tracking_uri(tracking_uri)  # drops the previous client and experiment
    try:
        yield loopline
    finally:
        try:
            while loopline.active_run() is not None:
                loopline.end_run()
        finally:
            registry = sys.modules.get("loopline.registry.api")
            if registry is not None:
                registry.close()
            loopline.set_tracking_uri(None)  # closes the client: flushes, stops its writer
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_settings()
            gc.collect()

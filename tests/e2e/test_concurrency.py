"""Many processes on one embedded store, and a process killed while it logs.

- 8 processes log at once to the same SQLite store (each its own runs, thousands
  of points, params and tags): no "database is locked", no point lost.
- A process killed with SIGKILL in the middle of logging loses at most what it had
  not written yet: the store opens, passes ``PRAGMA integrity_check``, holds every
  point the process had flushed, holds whole batches only, and takes new runs.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loopline.client.factory import open_service
from loopline.config import Settings, reset_settings
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

WORKERS = 8
RUNS_PER_WORKER = 3
POINTS_PER_RUN = 3_000  # per key; two keys per run
KEYS = ("loss", "acc")


def _log_worker(home: str, index: int, barrier: Barrier) -> None:
    """One process: a few runs with params, tags and thousands of points each."""
    try:
        os.environ["LOOPLINE_HOME"] = home
        os.environ["LOOPLINE_FLUSH_INTERVAL"] = "0.01"  # many small, competing writes
        reset_settings()
        import loopline

        barrier.wait(timeout=120)
        # All eight open the fresh store and create the experiment at once.
        loopline.set_experiment("crowd")
        for r in range(RUNS_PER_WORKER):
            with loopline.start_run(run_name=f"w{index}-r{r}"):
                loopline.log_params({"worker": index, "run": r})
                loopline.set_tags({"worker": index, "pid": os.getpid()})
                for i in range(POINTS_PER_RUN):
                    loopline.log_metric("loss", 1.0 / (i + 1), step=i)
                    loopline.log_metric("acc", i / POINTS_PER_RUN, step=i)
                    if i % 1000 == 999:
                        loopline.flush()
        loopline.flush()
    except BaseException:
        Path(home, f"worker-{index}.error").write_text(traceback.format_exc())
        raise


def test_eight_processes_log_at_once_without_losing_a_point(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(WORKERS)
    workers = [
        spawn.Process(target=_log_worker, args=(str(home), i, barrier)) for i in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    errors = "\n".join(p.read_text() for p in sorted(home.glob("worker-*.error")))
    assert [w.exitcode for w in workers] == [0] * WORKERS, errors
    assert "database is locked" not in errors

    service = open_service(Settings(home=home))
    try:
        exps = [e for e in service.list_experiments() if e.name == "crowd"]
        assert len(exps) == 1
        runs, token = service.search_runs([exps[0].experiment_id], max_results=1000)
        assert token is None
        assert len(runs) == WORKERS * RUNS_PER_WORKER
        assert {r.info.run_name for r in runs} == {
            f"w{i}-r{r}" for i in range(WORKERS) for r in range(RUNS_PER_WORKER)
        }
        for run in runs:
            worker, number = run.info.run_name[1:].split("-r")
            assert run.info.status == "FINISHED"
            assert run.data.params == {"worker": worker, "run": number}
            assert run.data.tags["worker"] == worker
            assert run.data.metrics == {
                "loss": 1.0 / POINTS_PER_RUN,
                "acc": (POINTS_PER_RUN - 1) / POINTS_PER_RUN,
            }
            for key in KEYS:
                steps = [m.step for m in service.metric_history(run.info.run_id, key)]
                assert steps == list(range(POINTS_PER_RUN)), (run.info.run_name, key)
        with service.db.read() as conn:
            total = conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar_one()
        assert total == WORKERS * RUNS_PER_WORKER * POINTS_PER_RUN * len(KEYS)
    finally:
        service.close()


_KILLED_LOGGER = textwrap.dedent(
    """
    import sys
    import loopline

    run = loopline.start_run()
    print("run", run.info.run_id, flush=True)
    i = 0
    while True:
        loopline.log_metric("m", float(i), step=i)
        loopline.log_metric("twin", float(i), step=i)
        i += 1
        if i % 5_000 == 0:
            loopline.flush()
            print("flushed", i, flush=True)
    """
)


def _integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_logger_loses_only_its_unflushed_buffer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LOOPLINE_HOME": str(home), "LOOPLINE_FLUSH_INTERVAL": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_LOGGER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        run_id = proc.stdout.readline().split()[1]
        flushed = 0
        deadline = time.monotonic() + 60
        # Kill it once it has flushed a while; the background writer is busy by then.
        while flushed < 60_000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "logger ended"
            flushed = int(line.split()[1])
        assert flushed >= 60_000
        time.sleep(random.uniform(0.0, 0.1))  # anywhere in the writer's cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    db_path = home / "loopline.db"
    assert _integrity(db_path) == "ok"
    service = open_service(Settings(home=home))
    try:
        run = service.get_run(run_id)
        assert run.info.status == "RUNNING"  # nobody ended it
        steps = {
            key: [m.step for m in service.metric_history(run_id, key)] for key in ("m", "twin")
        }
        for key, got in steps.items():
            # Every flushed point is there, and what is there has no gap: batches are
            # applied in order and each one whole, or not at all.
            assert len(got) >= flushed, key
            assert got == list(range(len(got))), key
            assert run.data.metrics[key] == float(len(got) - 1)
        # The two keys were logged in pairs; a batch may split a pair, by one point.
        assert len(steps["m"]) - len(steps["twin"]) in (0, 1)

        fresh = uuid.uuid4().hex
        service.write(
            RunWrites(
                batch_id=uuid.uuid4().hex,
                new_runs=[NewRun(fresh, "0", "after-the-kill", now_ms(), "me")],
                metrics=[(fresh, "m", 1.0, now_ms(), 0)],
            )
        )
        assert service.get_run(fresh).data.metrics == {"m": 1.0}
    finally:
        service.close()
    assert _integrity(db_path) == "ok"

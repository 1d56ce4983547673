"""The fluent SDK end to end on the embedded store (each test has its own LOOPLINE_HOME)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

import loopline
from loopline.client.client import Client
from loopline.client.factory import open_service
from loopline.config import get_settings
from loopline.errors import (
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    StoreError,
    UnsafePathError,
)
from loopline.tracking import fluent
from loopline.tracking.service import LIMITS, TrackingService
from loopline.tracking.store import ParamConflictError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.tracking.entities import RunWrites


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in loopline.get_metric_history(run_id, key)]


# -- runs -----------------------------------------------------------------------------
def test_start_run_finishes_and_stores_what_was_logged() -> None:
    exp = loopline.set_experiment("fluent")
    assert loopline.set_experiment("fluent").experiment_id == exp.experiment_id
    with loopline.start_run(run_name="first", tags={"team": "ml"}) as run:
        assert loopline.active_run() is run
        loopline.log_param("model", "rf")
        loopline.log_params({"depth": 3, "lr": 0.1})
        loopline.set_tag("stage", "dev")
        loopline.set_tags({"a": 1, "b": "two"})
        loopline.delete_tag("b")
        for step in range(5):
            loopline.log_metric("loss", 1.0 / (step + 1), step=step)
        loopline.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
    assert loopline.active_run() is None
    stored = loopline.get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.end_time is not None
    assert stored.info.experiment_id == exp.experiment_id
    assert stored.info.run_name == "first"
    assert stored.data.params == {"model": "rf", "depth": "3", "lr": "0.1"}
    assert stored.data.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    tags = stored.data.tags
    assert {k: tags[k] for k in ("team", "stage", "a")} == {"team": "ml", "stage": "dev", "a": "1"}
    assert "b" not in tags
    assert tags["loopline.user"] == get_settings().user
    assert tags["loopline.python"].count(".") == 2
    assert [s for s, _ in history(run.info.run_id, "loss")] == [0, 1, 2, 3, 4]
    last = loopline.last_active_run()
    assert last is not None
    assert last.info.run_id == run.info.run_id


def test_an_exception_fails_the_run() -> None:
    started: list[loopline.ActiveRun] = []

    def train() -> None:
        with loopline.start_run() as run:
            started.append(run)
            loopline.log_metric("m", 1.0)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        train()
    stored = loopline.get_run(started[0].info.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.metrics == {"m": 1.0}


def test_ctrl_c_kills_the_run() -> None:
    with pytest.raises(KeyboardInterrupt), loopline.start_run() as run:
        raise KeyboardInterrupt
    assert loopline.get_run(run.info.run_id).info.status == "KILLED"


def test_end_run_with_a_status() -> None:
    run = loopline.start_run()
    loopline.end_run("KILLED")
    assert loopline.get_run(run.info.run_id).info.status == "KILLED"
    loopline.end_run()  # no active run: nothing happens


def test_nested_runs_need_nested_and_record_their_parent() -> None:
    with loopline.start_run() as parent:
        with pytest.raises(InvalidStateError, match="nested=True"):
            loopline.start_run()
        with loopline.start_run(nested=True) as child:
            assert loopline.active_run() is child
            loopline.log_metric("inner", 1.0)
        assert loopline.active_run() is parent
        grandchild = loopline.start_run(nested=True)
    # Ending the parent ended the child still open above it.
    child_run = loopline.get_run(child.info.run_id)
    assert child_run.info.parent_run_id == parent.info.run_id
    assert child_run.data.tags["loopline.parentRunId"] == parent.info.run_id
    assert child_run.data.metrics == {"inner": 1.0}
    assert loopline.get_run(grandchild.info.run_id).info.status == "FINISHED"
    assert loopline.get_run(parent.info.run_id).info.parent_run_id is None


def test_logging_without_a_run_starts_one() -> None:
    loopline.log_metric("m", 1.0)
    run = loopline.active_run()
    assert run is not None
    loopline.end_run()
    assert loopline.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_start_run_in_an_unknown_or_deleted_experiment_is_refused() -> None:
    with pytest.raises(NotFoundError):
        loopline.start_run(experiment_id="12345")
    exp = loopline.set_experiment("to-delete")
    loopline.get_client().delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidStateError, match="deleted"):
        loopline.set_experiment("to-delete")
    assert loopline.active_run() is None


def test_resume_a_run_by_id() -> None:
    with loopline.start_run() as run:
        loopline.log_param("lr", 0.1)
        loopline.log_metric("loss", 1.0, step=0)
    run_id = run.info.run_id
    with loopline.start_run(run_id=run_id) as resumed:
        assert resumed.info.run_id == run_id
        info = loopline.get_run(run_id).info
        assert (info.status, info.end_time) == ("RUNNING", None)
        loopline.log_metric("loss", 0.5, step=1)
        loopline.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(ParamConflictError):
            loopline.log_param("lr", 0.2)  # known from the stored run: refused at once
    stored = loopline.get_run(run_id)
    assert stored.info.status == "FINISHED"
    assert history(run_id, "loss") == [(0, 1.0), (1, 0.5)]
    with pytest.raises(NotFoundError):
        loopline.start_run(run_id="0" * 32)


def test_a_thread_without_a_run_logs_to_the_main_threads_run() -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            assert loopline.active_run() is run
            for i in range(100):
                loopline.log_metric("from_thread", float(i), step=i)
            loopline.set_tag("thread", "yes")
        except BaseException as exc:
            errors.append(exc)

    with loopline.start_run() as run:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert errors == []
    stored = loopline.get_run(run.info.run_id)
    assert stored.data.metrics["from_thread"] == 99.0
    assert stored.data.tags["thread"] == "yes"
    assert len(history(run.info.run_id, "from_thread")) == 100


def test_a_thread_with_its_own_run_keeps_it_to_itself() -> None:
    seen: dict[str, Any] = {}

    def worker() -> None:
        with loopline.start_run() as own:
            seen["own"] = own.info.run_id
            loopline.log_metric("x", 2.0)

    with loopline.start_run() as main:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert loopline.active_run() is main
        loopline.log_metric("x", 1.0)
    assert loopline.get_run(seen["own"]).data.metrics == {"x": 2.0}
    assert loopline.get_run(main.info.run_id).data.metrics == {"x": 1.0}
    assert loopline.get_run(seen["own"]).info.parent_run_id is None


# -- values -----------------------------------------------------------------------------
def test_metrics_keep_nan_and_infinities_and_numpy_values() -> None:
    import numpy as np

    with loopline.start_run() as run:
        loopline.log_metric("nan", math.nan)
        loopline.log_metric("inf", math.inf, step=1)
        loopline.log_metric("ninf", -math.inf, timestamp=1234)
        loopline.log_metric("np", np.float32(0.5), step=np.int64(2))  # type: ignore[arg-type]
    metrics = loopline.get_run(run.info.run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf
    assert metrics["np"] == 0.5
    assert loopline.get_metric_history(run.info.run_id, "ninf")[0].timestamp == 1234
    [point] = loopline.get_metric_history(run.info.run_id, "np")
    assert (type(point.step), point.step, type(point.timestamp)) == (int, 2, int)


def test_a_param_conflict_is_refused_at_once() -> None:
    with loopline.start_run() as run:
        loopline.log_param("lr", 0.1)
        loopline.log_param("lr", "0.1")
        with pytest.raises(ParamConflictError, match="'lr'"):
            loopline.log_param("lr", 0.2)
        loopline.log_metric("still", 1.0)  # the refusal did not poison the writer
    assert loopline.get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_oversized_keys_and_values_are_refused_at_once() -> None:
    with loopline.start_run():
        with pytest.raises(LimitExceededError, match=f"the limit is {LIMITS.key}"):
            loopline.log_metric("k" * (LIMITS.key + 1), 1.0)
        with pytest.raises(LimitExceededError, match=f"the limit is {LIMITS.param_value}"):
            loopline.log_param("p", "v" * (LIMITS.param_value + 1))
        with pytest.raises(LimitExceededError, match=f"the limit is {LIMITS.tag_value}"):
            loopline.set_tag("t", "v" * (LIMITS.tag_value + 1))
        with pytest.raises(LimitExceededError):
            loopline.start_run(run_name="n" * (LIMITS.run_name + 1), nested=True)
        loopline.flush()  # nothing was queued that the store would refuse


# -- artifacts ------------------------------------------------------------------------
def test_artifacts(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    (tmp_path / "data" / "sub").mkdir()
    (tmp_path / "data" / "sub" / "b.txt").write_text("b")
    single = tmp_path / "model.bin"
    single.write_bytes(b"\x00\x01")
    with loopline.start_run() as run:
        loopline.log_artifact(single)
        loopline.log_artifact(single, artifact_path="models/v1")
        loopline.log_artifacts(tmp_path / "data", artifact_path="data")
        loopline.log_text("hello", "notes/hello.txt")
        loopline.log_dict({"a": 1, "b": [1, 2]}, "config.json")
        loopline.log_dict({"a": 1, "b": [1, 2]}, "config.yaml")
        with pytest.raises(NotFoundError):
            loopline.log_artifact(tmp_path / "missing.bin")
        with pytest.raises(UnsafePathError):
            loopline.log_text("x", "../outside.txt")
    client = loopline.get_client()
    run_id = run.info.run_id
    top = [(f.path, f.is_dir) for f in client.list_artifacts(run_id)]
    assert top == [
        ("config.json", False),
        ("config.yaml", False),
        ("data", True),
        ("model.bin", False),
        ("models", True),
        ("notes", True),
    ]
    assert [f.path for f in client.list_artifacts(run_id, "data")] == ["data/a.csv", "data/sub"]
    assert client.read_artifact(run_id, "models/v1/model.bin") == b"\x00\x01"
    assert client.read_artifact(run_id, "notes/hello.txt") == b"hello"
    assert json.loads(client.read_artifact(run_id, "config.json")) == {"a": 1, "b": [1, 2]}
    assert client.read_artifact(run_id, "config.yaml").decode() == "a: 1\nb:\n- 1\n- 2\n"
    out = client.download_artifacts(run_id, "data", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "b"
    assert (out / "a.csv").read_text() == "x\n1\n"


def test_log_figure() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with loopline.start_run() as run:
        loopline.log_figure(fig, "plots/line.png")
        loopline.log_figure(fig, "plots/line.svg")
    plt.close(fig)
    client = loopline.get_client()
    assert client.read_artifact(run.info.run_id, "plots/line.png").startswith(b"\x89PNG")
    assert b"<svg" in client.read_artifact(run.info.run_id, "plots/line.svg")


# -- search ---------------------------------------------------------------------------
def test_search_runs_returns_mlflows_columns() -> None:
    loopline.set_experiment("search")
    for i, model in enumerate(["rf", "gbm", "rf"]):
        with loopline.start_run(run_name=f"r{i}"):
            loopline.log_param("model", model)
            loopline.log_metric("auc", round(0.8 + i / 100, 6))
    frame = loopline.search_runs(
        filter_string="params.model = 'rf' and metrics.auc > 0.5",
        order_by=["metrics.auc DESC"],
    )
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert {"metrics.auc", "params.model", "tags.loopline.user"} <= set(frame.columns)
    assert frame["run_name"].tolist() == ["r2", "r0"]
    assert frame["metrics.auc"].tolist() == [0.82, 0.8]
    assert (frame["status"] == "FINISHED").all()
    assert str(frame["start_time"].dtype).startswith("datetime64")
    runs = loopline.search_runs(output_format="list")
    assert isinstance(runs, list)
    assert len(runs) == 3
    empty = loopline.search_runs(filter_string="params.model = 'svm'")
    assert len(empty) == 0
    assert "run_id" in empty.columns


# -- buffering and failures -------------------------------------------------------------
class FailingService(TrackingService):
    """The embedded service whose writes fail while ``failing`` is set."""

    failing = False

    def write(self, batch: RunWrites) -> None:
        if self.failing:
            raise StoreError("the disk is full")
        super().write(batch)


@pytest.fixture
def failing() -> Iterator[FailingService]:
    base = open_service(get_settings())
    service = FailingService(base.db, base.blobs, user=base.user)
    fluent._client = Client(settings=get_settings().with_(flush_interval=0.01), transport=service)
    yield service
    service.failing = False


def test_a_failed_write_is_raised_at_flush(failing: FailingService) -> None:
    run = loopline.start_run()
    loopline.flush()
    failing.failing = True
    loopline.log_metric("m", 1.0)
    with pytest.raises(StoreError, match="disk is full"):
        loopline.flush()
    failing.failing = False
    loopline.log_metric("m", 2.0)
    loopline.end_run()
    assert history(run.info.run_id, "m") == [(0, 2.0)]


def test_a_failed_background_write_is_raised_at_the_next_call(failing: FailingService) -> None:
    loopline.start_run()
    loopline.flush()
    failing.failing = True
    loopline.log_metric("m", 1.0)
    writer = loopline.get_client().writer
    deadline = time.monotonic() + 10
    while writer.error is None:
        assert time.monotonic() < deadline, "the background write never ran"
        time.sleep(0.01)
    with pytest.raises(StoreError, match="disk is full"):
        loopline.log_metric("m", 2.0)
    failing.failing = False
    loopline.end_run()


def test_a_failed_write_at_end_run_is_raised_by_the_next_call(failing: FailingService) -> None:
    # end_run hands the run's data to the writer and returns; the failure surfaces
    # at the next call (here flush), never swallowed.
    loopline.start_run()
    loopline.flush()
    failing.failing = True
    loopline.log_metric("m", 1.0)
    loopline.end_run()
    with pytest.raises(StoreError):
        loopline.flush()


def test_flush_makes_points_visible_to_other_clients() -> None:
    with loopline.start_run() as run:
        for i in range(10_000):
            loopline.log_metric("m", float(i), step=i)
        loopline.flush()
        service = open_service(get_settings())
        try:
            assert len(service.metric_history(run.info.run_id, "m")) == 10_000
        finally:
            service.close()


def test_nothing_logged_means_flush_is_free() -> None:
    loopline.flush()
    assert fluent._client is None


# -- processes ------------------------------------------------------------------------
def _run_script(body: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_runs_left_open_finish_at_exit_with_every_point() -> None:
    done = _run_script(
        """
        import loopline
        loopline.set_experiment("exit")
        run = loopline.start_run()
        loopline.log_param("p", 1)
        for i in range(20_000):
            loopline.log_metric("m", float(i), step=i)
        print(run.info.run_id)
        """
    )
    run_id = done.stdout.strip()
    run = loopline.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"p": "1"}
    assert len(loopline.get_metric_history(run_id, "m")) == 20_000


def test_an_uncaught_exception_fails_the_open_run_at_exit() -> None:
    done = _run_script(
        """
        import loopline
        run = loopline.start_run()
        loopline.log_metric("m", 1.0)
        print(run.info.run_id, flush=True)
        raise RuntimeError("training diverged")
        """,
        check=False,
    )
    assert done.returncode == 1
    assert "training diverged" in done.stderr
    run = loopline.get_run(done.stdout.strip())
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"m": 1.0}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_write_its_parents_buffer() -> None:
    with loopline.start_run() as run:
        for i in range(100):
            loopline.log_metric("parent", float(i), step=i)  # buffered, not flushed
        pid = os.fork()
        if pid == 0:  # the child: log to the inherited active run, then leave
            code = 0
            try:
                for i in range(50):
                    loopline.log_metric("child", float(i), step=i)
                loopline.flush()
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert len(history(run.info.run_id, "parent")) == 100
    assert len(history(run.info.run_id, "child")) == 50
    assert loopline.get_run(run.info.run_id).info.status == "FINISHED"

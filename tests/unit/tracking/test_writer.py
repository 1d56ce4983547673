"""The background writer: batching, ordering, flushing, and errors that are never lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from loopline.client.factory import open_service
from loopline.config import get_settings
from loopline.errors import NotFoundError, StoreError
from loopline.tracking import writer as writer_module
from loopline.tracking.entities import NewRun, RunUpdate
from loopline.tracking.service import TrackingService
from loopline.tracking.store import ParamConflictError, now_ms
from loopline.tracking.writer import DELETE_TAG, PARAM, TAG, BatchWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from loopline.tracking.entities import RunWrites


class RecordingService(TrackingService):
    """The embedded service, recording each batch and failing on demand."""

    def __init__(self, base: TrackingService) -> None:
        super().__init__(base.db, base.blobs, user=base.user)
        self.batches: list[RunWrites] = []
        self.fail_with: BaseException | None = None
        self.delay = 0.0

    def write(self, batch: RunWrites) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        time.sleep(self.delay)  # a slow store, or a server far away
        super().write(batch)
        self.batches.append(batch)


@pytest.fixture
def service() -> Iterator[RecordingService]:
    svc = RecordingService(open_service(get_settings()))
    yield svc
    svc.close()


@pytest.fixture
def make_writer(service: RecordingService) -> Iterator[Callable[..., BatchWriter]]:
    made: list[BatchWriter] = []

    def make(interval: float = 60.0, high_water: int = 10**9) -> BatchWriter:
        writer = BatchWriter(service, interval=interval, high_water=high_water)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.error = None
        writer.close()


def start(writer: BatchWriter) -> str:
    run_id = uuid.uuid4().hex
    writer.new_run(NewRun(run_id, "0", "r", now_ms(), "me"))
    return run_id


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_flush_stores_everything_queued(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    run_id = start(writer)
    for i in range(1000):
        writer.metric(run_id, "loss", 1.0 / (i + 1), now_ms(), i)
    writer.put((PARAM, run_id, "lr", "0.1"))
    writer.put((TAG, run_id, "team", "ml"))
    writer.update(RunUpdate(run_id, status="FINISHED", end_time=now_ms()))
    assert service.batches == []  # nothing written before the interval or a flush
    writer.flush()
    assert len(service.batches) == 1
    run = service.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags == {"team": "ml"}
    assert len(service.metric_history(run_id, "loss")) == 1000
    assert len(writer.queue) == 0


def test_batches_are_capped(
    make_writer: Callable[..., BatchWriter],
    service: RecordingService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer_module, "MAX_POINTS_PER_BATCH", 300)
    monkeypatch.setattr(writer_module, "MAX_ITEMS_PER_BATCH", 50)
    writer = make_writer()
    run_id = start(writer)
    for i in range(1000):
        writer.metric(run_id, "m", float(i), now_ms(), i)
    for i in range(120):
        writer.put((PARAM, run_id, f"p{i}", "v"))
    writer.flush()
    assert max(len(b.metrics) for b in service.batches) == 300
    assert max(len(b.params) + len(b.new_runs) for b in service.batches) <= 50
    assert sum(len(b.metrics) for b in service.batches) == 1000
    assert len(service.get_run(run_id).data.params) == 120
    assert [m.step for m in service.metric_history(run_id, "m")] == list(range(1000))


def test_tags_keep_their_order_around_deletions(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    run_id = start(writer)
    writer.metric(run_id, "m", 0.0, now_ms(), 0)
    writer.put((TAG, run_id, "a", "1"))
    writer.metric(run_id, "m", 1.0, now_ms(), 1)
    writer.put((DELETE_TAG, run_id, "a"))
    writer.metric(run_id, "m", 2.0, now_ms(), 2)
    writer.put((TAG, run_id, "a", "2"))
    writer.put((TAG, run_id, "b", "1"))
    writer.put((DELETE_TAG, run_id, "b"))
    writer.metric(run_id, "m", 3.0, now_ms(), 3)
    writer.flush()
    assert len(service.batches) == 3  # a batch ends at each deletion
    assert service.get_run(run_id).data.tags == {"a": "2"}
    assert [m.value for m in service.metric_history(run_id, "m")] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="not a queue item"):
        writer.put((run_id, "m", 1.0, 0, 0))


def test_the_thread_writes_after_the_interval(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer(interval=0.02)
    run_id = start(writer)
    writer.metric(run_id, "m", 1.0, now_ms(), 0)
    wait_for(lambda: len(service.batches) == 1)
    assert service.get_run(run_id).data.metrics == {"m": 1.0}


def test_the_high_water_mark_wakes_the_thread(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer(interval=60.0, high_water=100)
    run_id = start(writer)
    for i in range(150):
        writer.metric(run_id, "m", 1.0, now_ms(), i)
    wait_for(lambda: sum(len(b.metrics) for b in service.batches) == 150)


def test_a_write_error_is_raised_once_at_the_next_flush(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    run_id = start(writer)
    writer.flush()
    service.fail_with = StoreError("disk full")
    writer.metric(run_id, "m", 1.0, now_ms(), 0)
    with pytest.raises(StoreError, match="disk full"):
        writer.flush()
    writer.flush()  # raised once, not forever
    service.fail_with = None
    writer.metric(run_id, "m", 2.0, now_ms(), 1)
    writer.flush()
    assert [m.value for m in service.metric_history(run_id, "m")] == [2.0]


def test_the_first_of_several_errors_is_kept(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    ghost = uuid.uuid4().hex
    writer.metric(ghost, "m", 1.0, now_ms(), 0)
    writer._drain()
    service.fail_with = StoreError("later failure")
    writer.metric(ghost, "m", 1.0, now_ms(), 0)
    with pytest.raises(NotFoundError, match=ghost):
        writer.flush()


def test_a_background_error_is_raised_by_close(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    writer.metric(uuid.uuid4().hex, "m", 1.0, now_ms(), 0)
    with pytest.raises(NotFoundError):
        writer.close()
    writer.close()  # closing again is quiet


def test_a_param_conflict_keeps_the_rest_of_its_batch(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer()
    run_id = start(writer)
    writer.put((PARAM, run_id, "lr", "0.1"))
    writer.flush()
    writer.put((PARAM, run_id, "lr", "0.2"))  # another process's client could do this
    writer.put((PARAM, run_id, "depth", "3"))
    writer.metric(run_id, "m", 1.0, now_ms(), 0)
    with pytest.raises(ParamConflictError, match="'lr'"):
        writer.flush()
    run = service.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "depth": "3"}
    assert run.data.metrics == {"m": 1.0}


def test_flush_from_many_threads_loses_nothing(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    writer = make_writer(interval=0.005, high_water=50)
    run_id = start(writer)
    writer.flush()

    def work(t: int) -> None:
        for i in range(2000):
            writer.metric(run_id, f"t{t}", float(i), now_ms(), i)
            if i % 500 == 0:
                writer.flush()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    for t in range(4):
        assert len(service.metric_history(run_id, f"t{t}")) == 2000


def test_flush_returns_while_another_thread_keeps_logging(
    make_writer: Callable[..., BatchWriter], service: RecordingService
) -> None:
    # Each write takes 20 ms, and the other thread logs faster than that drains:
    # the queue is never empty, yet flush() must store what it was called for and return.
    writer = make_writer(interval=0.01, high_water=1000)
    run_id = start(writer)
    writer.metric(run_id, "mine", 1.0, now_ms(), 0)
    service.delay = 0.02
    stop = threading.Event()

    def spam() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(200):
                writer.metric(run_id, "spam", 1.0, now_ms(), i)
                i += 1
            time.sleep(0.001)

    spammer = threading.Thread(target=spam, daemon=True)
    spammer.start()
    flusher = threading.Thread(target=lambda: [writer.flush() for _ in range(3)], daemon=True)
    try:
        time.sleep(0.05)
        flusher.start()
        flusher.join(timeout=60)
        assert not flusher.is_alive(), "flush never returned while another thread logged"
    finally:
        stop.set()
        spammer.join()
    service.delay = 0.0
    writer.flush()
    assert service.get_run(run_id).data.metrics["mine"] == 1.0


def test_live_writers_are_flushed_at_exit(tmp_path: Path) -> None:
    # A Client used without the fluent API and never closed: its points still land.
    script = textwrap.dedent(
        """
        from loopline import Client
        client = Client()
        run = client.create_run("0")
        for i in range(5000):
            client.log_metric(run.run_id, "m", float(i), step=i)
        print(run.run_id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    run_id = done.stdout.strip()
    service = open_service(get_settings())
    try:
        assert len(service.metric_history(run_id, "m")) == 5000
    finally:
        service.close()


@pytest.mark.slow
def test_apply_stores_100k_points_quickly(service: RecordingService) -> None:
    run_id = uuid.uuid4().hex
    writer = BatchWriter(service, interval=60)
    writer.new_run(NewRun(run_id, "0", "r", now_ms(), "me"))
    writer.flush()
    for i in range(100_000):
        writer.metric(run_id, f"k{i % 10}", i * 0.5, 1000 + i, i)
    started = time.perf_counter()
    writer.flush()
    elapsed = time.perf_counter() - started
    writer.close()
    assert elapsed < 1.5, f"100,000 points took {elapsed:.2f} s"

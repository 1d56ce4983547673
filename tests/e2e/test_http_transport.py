"""``HttpTransport`` against a real server: every transport method, errors, retries."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from loopline.client.http import HttpTransport
from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    LooplineError,
    NotFoundError,
    TransportError,
)
from loopline.tracking.entities import NewRun, RunUpdate, RunWrites
from loopline.tracking.store import ParamConflictError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def transport(server_url: str) -> Iterator[HttpTransport]:
    http = HttpTransport(server_url, user="ada", project="default")
    yield http
    http.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_run(transport: HttpTransport, experiment_id: str | None = None) -> str:
    experiment_id = experiment_id or transport.create_experiment(unique("exp"))
    run_id = uuid.uuid4().hex
    transport.write(
        RunWrites(
            uuid.uuid4().hex,
            new_runs=[NewRun(run_id, experiment_id, "run", int(time.time() * 1000), "ada")],
        )
    )
    return run_id


def points(run_id: str, count: int, key: str = "loss") -> RunWrites:
    return RunWrites(
        uuid.uuid4().hex,
        metrics=[(run_id, key, step / 10, 1_700_000_000_000 + step, step) for step in range(count)],
    )


# -- experiments ------------------------------------------------------------------------
def test_experiments_round_trip(transport: HttpTransport) -> None:
    name = unique("exp")
    exp_id = transport.create_experiment(name, description="first", tags={"team": "ml"})
    got = transport.get_experiment(exp_id)
    assert (got.name, got.description, got.tags) == (name, "first", {"team": "ml"})
    assert transport.get_experiment_by_name(name) == got
    assert transport.get_experiment_by_name(unique("missing")) is None
    assert [e.experiment_id for e in transport.list_experiments(name_like=name)] == [exp_id]

    transport.update_experiment(exp_id, name=name + "-renamed", description="second")
    transport.set_experiment_tag(exp_id, "stage", "dev")
    transport.set_experiment_tag(exp_id, "team", None)
    got = transport.get_experiment(exp_id)
    assert (got.name, got.description, got.tags) == (name + "-renamed", "second", {"stage": "dev"})

    transport.delete_experiment(exp_id)
    assert transport.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in {e.experiment_id for e in transport.list_experiments()}
    assert exp_id in {e.experiment_id for e in transport.list_experiments(view="deleted")}
    transport.restore_experiment(exp_id)
    assert transport.get_experiment(exp_id).lifecycle_stage == "active"


def test_errors_keep_their_class(transport: HttpTransport) -> None:
    name = unique("exp")
    exp_id = transport.create_experiment(name)
    with pytest.raises(AlreadyExistsError, match=name):
        transport.create_experiment(name)
    with pytest.raises(NotFoundError):
        transport.get_experiment("999999")
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        transport.update_experiment(exp_id, name=" ")
    with pytest.raises(NotFoundError, match="does not exist"):
        transport.get_run("0" * 32)
    with pytest.raises(InvalidArgumentError, match="not a valid batch"):
        transport._call("POST", "/writes", json={"batch_id": "x", "metrics": [[1, 2]]})
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        transport._call("POST", "/writes", content=b"{nope")
    transport.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match="deleted"):
        new_run(transport, exp_id)


def test_param_conflict_comes_back_as_param_conflict_error(transport: HttpTransport) -> None:
    run_id = new_run(transport)
    transport.write(RunWrites(uuid.uuid4().hex, params=[(run_id, "lr", "0.1")]))
    with pytest.raises(ParamConflictError, match="immutable") as caught:
        transport.write(RunWrites(uuid.uuid4().hex, params=[(run_id, "lr", "0.2")]))
    assert caught.value.conflicts == [(run_id, "lr")]
    assert caught.value.code == "INVALID_PARAMETER_VALUE"


# -- writes -----------------------------------------------------------------------------
def test_same_batch_twice_is_stored_once(transport: HttpTransport) -> None:
    run_id = new_run(transport)
    batch = points(run_id, 1000)
    batch.params.append((run_id, "model", "rf"))
    batch.updates.append(RunUpdate(run_id, status="FINISHED", end_time=1_700_000_999_000))
    transport.write(batch)
    transport.write(batch)
    assert len(transport.metric_history(run_id, "loss")) == 1000
    run = transport.get_run(run_id)
    assert (run.info.status, run.data.params) == ("FINISHED", {"model": "rf"})


def test_write_waits_for_a_server_that_starts_late(
    thread_server: Any, free_socket: Any, tmp_path: Path
) -> None:
    sock = free_socket()  # bound, not listening: connections are refused for now
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    http = HttpTransport(url, retries=10, backoff=0.05, max_backoff=0.5)
    batch = RunWrites(
        uuid.uuid4().hex,
        new_runs=[NewRun(uuid.uuid4().hex, "0", "late", 1, "ada")],
    )
    run_id = batch.new_runs[0].run_id
    batch.metrics = points(run_id, 500).metrics
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            http.write(batch)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.4)  # the client is retrying by now
    assert not outcome
    try:
        with thread_server(sock=sock):
            writer.join(timeout=30)
            assert outcome == [None]
            assert len(http.metric_history(run_id, "loss")) == 500
    finally:
        http.close()


class FailFirstWrite:
    """Applies the first ``/writes`` but answers 503, as if the answer were lost."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.writes = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/writes"):
            await self.app(scope, receive, send)
            return
        self.writes += 1
        if self.writes > 1:
            await self.app(scope, receive, send)
            return

        async def swallow(message: Any) -> None:
            pass

        await self.app(scope, receive, swallow)
        body = orjson.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try again"})
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def test_retried_batch_after_a_lost_answer_is_stored_once(thread_server: Any) -> None:
    wrappers: list[FailFirstWrite] = []

    def wrap(app: Any) -> FailFirstWrite:
        wrappers.append(FailFirstWrite(app))
        return wrappers[0]

    with thread_server(wrap=wrap) as url:
        http = HttpTransport(url, backoff=0.01)
        try:
            run_id = uuid.uuid4().hex
            batch = points(run_id, 300)
            batch.new_runs.append(NewRun(run_id, "0", "retried", 1, "ada"))
            http.write(batch)  # applied, answered 503, sent again, skipped by batch_id
            assert wrappers[0].writes == 2
            assert len(http.metric_history(run_id, "loss")) == 300
        finally:
            http.close()


def test_unreachable_server_names_the_url(free_socket: Any) -> None:
    with free_socket() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        http = HttpTransport(url, retries=3, backoff=0.01)
        try:
            started = time.monotonic()
            with pytest.raises(TransportError, match=r"127\.0\.0\.1.*after 3 tries") as caught:
                http.get_experiment("0")
            assert "loopline server` running?" in (caught.value.hint or "")
            assert time.monotonic() - started < 5
        finally:
            http.close()


def test_headers_carry_the_caller(thread_server: Any) -> None:
    seen: list[dict[bytes, bytes]] = []

    def wrap(app: Any) -> Any:
        async def capture(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(dict(scope["headers"]))
            await app(scope, receive, send)

        return capture

    with thread_server(wrap=wrap) as url:
        http = HttpTransport(url, token="t0ken", user="grace", project="default")
        try:
            exp_id = http.create_experiment("by-grace")
        finally:
            http.close()
    assert seen[-1][b"authorization"] == b"Bearer t0ken"
    assert seen[-1][b"x-loopline-user"] == b"grace"
    assert seen[-1][b"x-loopline-project"] == b"default"
    assert exp_id


# -- runs, search, artifacts, events -------------------------------------------------------
def test_runs_search_history_delete_restore(transport: HttpTransport) -> None:
    exp_id = transport.create_experiment(unique("search"))
    first, second = new_run(transport, exp_id), new_run(transport, exp_id)
    transport.write(
        RunWrites(
            uuid.uuid4().hex,
            params=[(first, "model", "rf"), (second, "model", "svm")],
            metrics=[(first, "acc", 0.9, 1, 0), (second, "acc", float("nan"), 1, 0)],
        )
    )
    found, token = transport.search_runs([exp_id], filter_string="params.model = 'rf'")
    assert ([r.info.run_id for r in found], token) == ([first], None)
    page, token = transport.search_runs([exp_id], max_results=1)
    assert len(page) == 1
    assert token is not None
    rest, token = transport.search_runs([exp_id], max_results=1, page_token=token)
    assert {page[0].info.run_id, rest[0].info.run_id} == {first, second}
    assert str(transport.metric_history(second, "acc")[0].value) == "nan"

    transport.delete_run(second)
    assert [r.info.run_id for r in transport.search_runs([exp_id])[0]] == [first]
    deleted = transport.search_runs([exp_id], view="deleted")[0]
    assert [r.info.run_id for r in deleted] == [second]
    transport.restore_run(second)
    assert len(transport.search_runs([exp_id])[0]) == 2


def test_artifacts_stream_both_ways(transport: HttpTransport, tmp_path: Path) -> None:
    run_id = new_run(transport)
    big = tmp_path / "big.bin"
    payload = bytes(range(256)) * (12 * 1024)  # 3 MiB: several chunks each way
    big.write_bytes(payload)
    transport.put_artifact(run_id, "data/big.bin", big)
    transport.put_artifact(run_id, "data/deeper/small.txt", b"small")
    transport.put_artifact(run_id, "top.txt", b"top")

    assert [(f.path, f.is_dir) for f in transport.list_artifacts(run_id)] == [
        ("data", True),
        ("top.txt", False),
    ]
    listed = transport.list_artifacts(run_id, "data")
    assert [(f.path, f.size) for f in listed] == [
        ("data/big.bin", len(payload)),
        ("data/deeper", None),
    ]
    assert transport.read_artifact(run_id, "data/deeper/small.txt") == b"small"

    folder = transport.download_artifacts(run_id, "data", tmp_path / "out")
    assert folder == tmp_path / "out" / "data"
    assert (folder / "big.bin").read_bytes() == payload
    assert (folder / "deeper" / "small.txt").read_bytes() == b"small"
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left behind
    with pytest.raises(NotFoundError):
        transport.download_artifacts(run_id, "nothing/here", tmp_path / "none")
    with pytest.raises(NotFoundError):
        transport.read_artifact(run_id, "missing.txt")
    with pytest.raises(NotFoundError):
        transport.put_artifact("0" * 32, "x.txt", b"x")


def test_events_filter_and_page(transport: HttpTransport) -> None:
    exp_id = transport.create_experiment(unique("events"))
    created = [e for e in transport.events(kinds=["experiment.*"]) if e.entity_id == exp_id]
    assert [e.kind for e in created] == ["experiment.created"]
    assert created[0].actor == "ada"
    page = transport.events(limit=1)
    assert len(page) == 1
    assert all(e.id > page[0].id for e in transport.events(after_id=page[0].id))
    both = transport._call("GET", "/events", params={"kinds": "experiment.created,run.*"})
    assert {e["kind"].split(".")[0] for e in both["events"]} <= {"experiment", "run"}


def test_a_server_that_is_not_loopline_is_named(thread_server: Any) -> None:
    def wrap(app: Any) -> Any:
        async def html(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"<html>hello</html>"})

        return html

    with thread_server(wrap=wrap) as url:
        http = HttpTransport(url)
        try:
            with pytest.raises(LooplineError, match="not JSON") as caught:
                http.get_experiment("0")
            assert "loopline server" in (caught.value.hint or "")
        finally:
            http.close()

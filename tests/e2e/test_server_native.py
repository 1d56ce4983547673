"""The SDK against a real ``loopline server`` over HTTP (the native ``/api/v1``)."""

from __future__ import annotations

import math
import os
import signal
import socket
import statistics
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import loopline
from loopline.client.client import Client
from loopline.config import Settings
from loopline.errors import LimitExceededError, NotFoundError, UnsafePathError
from loopline.server.api.limits import BodyLimitMiddleware
from loopline.server.app import create_app
from loopline.server.deps import caller, service
from loopline.server.run import bind_socket
from loopline.tracking.store import ParamConflictError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def sdk(server_url: str) -> Iterator[str]:
    """The fluent API pointed at the module's server; detached afterwards."""
    loopline.set_tracking_uri(server_url)
    yield server_url
    loopline.set_tracking_uri(None)


def remote_client(url: str, tmp_path: Path) -> Client:
    return Client(settings=Settings(home=tmp_path / "client-home", tracking_uri=url))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the SDK, end to end ---------------------------------------------------------------
def test_sdk_round_trip_over_http(sdk: str, tmp_path: Path) -> None:
    exp = loopline.set_experiment(unique("http-sdk"))
    source = tmp_path / "model.txt"
    source.write_text("weights")
    with loopline.start_run(run_name="first", tags={"team": "ml"}) as run:
        loopline.log_params({"model": "rf", "depth": 7})
        loopline.log_metric("loss", 0.5, step=0)
        loopline.log_metric("loss", 0.25, step=1)
        loopline.log_metrics({"nan": math.nan, "pinf": math.inf, "ninf": -math.inf})
        loopline.set_tag("stage", "dev")
        loopline.log_text("hello over http", "notes/readme.txt")
        loopline.log_artifact(source, artifact_path="models")
    run_id = run.info.run_id

    got = loopline.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.experiment_id == exp.experiment_id
    assert got.data.params == {"model": "rf", "depth": "7"}
    assert got.data.metrics["loss"] == 0.25
    assert math.isnan(got.data.metrics["nan"])
    assert got.data.metrics["pinf"] == math.inf
    assert got.data.metrics["ninf"] == -math.inf
    assert got.data.tags["stage"] == "dev"
    assert got.data.tags["team"] == "ml"
    history = loopline.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]
    assert loopline.get_metric_history(run_id, "pinf")[0].value == math.inf

    client = loopline.get_client()
    listed = {f.path: f for f in client.list_artifacts(run_id)}
    assert listed["models"].is_dir
    assert listed["notes"].is_dir
    assert [f.path for f in client.list_artifacts(run_id, "models")] == ["models/model.txt"]
    assert client.read_artifact(run_id, "notes/readme.txt") == b"hello over http"
    folder = client.download_artifacts(run_id, "", tmp_path / "all")
    assert (folder / "models" / "model.txt").read_text() == "weights"
    one = client.download_artifacts(run_id, "notes/readme.txt", tmp_path / "one")
    assert one.read_text() == "hello over http"

    with loopline.start_run(run_name="second") as other:
        loopline.log_param("model", "svm")
    found = loopline.search_runs(filter_string="params.model = 'rf'", output_format="list")
    assert [r.info.run_id for r in found] == [run_id]
    assert len(loopline.search_runs(output_format="list")) == 2

    client.delete_run(other.info.run_id)
    assert client.get_run(other.info.run_id).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in loopline.search_runs(output_format="list")] == [run_id]
    client.restore_run(other.info.run_id)
    assert len(loopline.search_runs(output_format="list")) == 2

    events = client.events(kinds=["run.*"])
    assert {e.entity_id for e in events if e.kind == "run.finished"} >= {run_id, other.info.run_id}
    after = client.events(after_id=events[-1].id)
    assert all(e.id > events[-1].id for e in after)


def test_unknown_run_is_not_found(sdk: str, tmp_path: Path) -> None:
    client = loopline.get_client()
    with pytest.raises(NotFoundError, match="does not exist"):
        client.get_run("0" * 32)
    client.log_metric("f" * 32, "loss", 1.0)
    with pytest.raises(NotFoundError, match="does not exist"):
        client.flush()
    with pytest.raises(NotFoundError):
        client.get_metric_history("0" * 32, "loss")


def test_param_conflict_is_refused_clearly(sdk: str, tmp_path: Path) -> None:
    loopline.set_experiment(unique("conflict"))
    with loopline.start_run() as run:
        loopline.log_param("lr", 0.1)
        with pytest.raises(ParamConflictError, match="'lr'"):
            loopline.log_param("lr", 0.2)
    # Another process knows nothing of the first value: the server refuses it, the
    # error keeps its class, and the points sent along are not lost.
    other = remote_client(sdk, tmp_path)
    try:
        other.log_param(run.info.run_id, "lr", 0.3)
        other.log_metric(run.info.run_id, "loss", 1.5)
        with pytest.raises(ParamConflictError, match=r"already '0\.1'.*'0\.3'") as caught:
            other.flush()
        assert caught.value.conflicts == [(run.info.run_id, "lr")]
        assert "immutable" in str(caught.value)
    finally:
        other.close()
    got = loopline.get_run(run.info.run_id)
    assert got.data.params["lr"] == "0.1"
    assert got.data.metrics["loss"] == 1.5


def test_artifact_path_leaving_the_root_is_refused(sdk: str) -> None:
    loopline.set_experiment(unique("paths"))
    with (
        loopline.start_run() as run,
        pytest.raises(UnsafePathError, match=r"'\.\.' is not allowed"),
    ):
        loopline.log_text("x", "../escape.txt")
    # The same through the wire (httpx would normalise a literal '..', so encode it).
    url = f"{sdk}/api/v1/runs/{run.info.run_id}/artifacts/%2E%2E/escape.txt"
    for method in ("PUT", "GET"):
        response = httpx.request(method, url, content=b"x" if method == "PUT" else None)
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert ".." in response.json()["message"]


def test_oversized_body_answers_413_with_the_limit(thread_server: Any) -> None:
    limit = 100_000
    with thread_server(max_body_bytes=limit) as url:
        big = b"x" * (limit + 1)
        declared = httpx.post(f"{url}/api/v1/writes", content=big)
        assert declared.status_code == 413
        assert declared.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert f"the limit is {limit} bytes" in declared.json()["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(20):
                yield b"y" * 10_000

        streamed = httpx.post(f"{url}/api/v1/writes", content=chunks())
        assert streamed.status_code == 413
        assert f"the limit is {limit} bytes" in streamed.json()["message"]
        small = httpx.post(f"{url}/api/v1/experiments", json={"name": "fits"})
        assert small.status_code == 200

        client = Client(url)
        try:
            exp = client.create_experiment("limits")
            run = client.create_run(exp)
            with pytest.raises(LimitExceededError, match=f"limit is {limit} bytes") as caught:
                client.log_bytes(run.run_id, big, "big.bin")
            assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
        finally:
            client.close()


def test_100k_points_throughput(sdk: str, record_property: Callable[[str, Any], None]) -> None:
    points = 100_000
    loopline.set_experiment(unique("throughput"))
    started = time.perf_counter()
    with loopline.start_run() as run:
        for step in range(points):
            loopline.log_metric("loss", 1.0 / (step + 1), step=step)
    elapsed = time.perf_counter() - started  # the run's end flushes every point
    rate = points / elapsed
    record_property("points_per_second", round(rate))
    print(f"\n{points:,} points through the SDK over HTTP: {elapsed:.2f} s, {rate:,.0f} points/s")
    history = loopline.get_metric_history(run.info.run_id, "loss")
    assert len(history) == points
    assert history[-1].step == points - 1


# -- the app's shape ----------------------------------------------------------------------
def test_every_native_route_resolves_the_caller_and_service(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute

    from loopline.client.factory import open_service
    from loopline.server.api import router

    def routes(container: Any) -> Iterator[APIRoute]:
        for route in container.routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
                yield from routes(route.original_router)
            elif hasattr(route, "routes"):
                yield from routes(route)

    def calls(dependant: Any) -> set[Any]:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    native = list(routes(router))
    assert len(native) >= 18
    for route in native:
        assert {caller, service} <= calls(route.dependant), route.path

    svc = open_service(Settings(home=tmp_path / "home"))
    try:
        app = create_app(svc)
        middleware: list[Any] = list(app.user_middleware)
        assert any(m.cls is BodyLimitMiddleware for m in middleware)
    finally:
        svc.close()


def test_openapi_shows_request_bodies(server_url: str) -> None:
    spec = httpx.get(f"{server_url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    # Named apart from the MLflow-compatible API's models, so /docs shows plain names.
    assert {"ExperimentCreate", "ExperimentUpdate", "ExperimentTagSet", "RunSearch"} <= set(schemas)
    assert "/api/v1/writes" in spec["paths"]
    assert "/api/v1/runs/{run_id}/artifacts/{path}" in spec["paths"]


# -- several workers ----------------------------------------------------------------------
def test_listening_socket_gives_accepted_connections_nodelay() -> None:
    listener = bind_socket("127.0.0.1", 0)
    with listener, socket.create_connection(listener.getsockname()[:2]) as _conn:
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def keep_alive_latency(url: str, requests: int = 200) -> float:
    """The median time of a small GET on one keep-alive connection, in seconds."""
    with httpx.Client(base_url=url) as http:
        for _ in range(20):  # warm up every worker's engine
            http.get("/api/v1/experiments/0").raise_for_status()
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            http.get("/api/v1/experiments/0").raise_for_status()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_two_workers_keep_alive_latency(start_server: Any, loop: str) -> None:
    # Nagle's algorithm left on shows as ~40 ms per keep-alive request (asyncio only
    # sets TCP_NODELAY when the listening socket is created as TCP).
    server = start_server(workers=2, loop=loop)
    assert len(server.children()) == 2
    median = keep_alive_latency(server.url)
    print(f"\nkeep-alive GET, 2 workers, loop={loop}: median {median * 1000:.2f} ms")
    assert median < 0.02


def test_workers_stop_with_the_server(start_server: Any) -> None:
    server = start_server(workers=2)
    workers = server.children()
    assert len(workers) == 2
    assert server.stop(signal.SIGTERM) == 0
    wait_gone(workers)


def test_workers_do_not_outlive_a_killed_server(start_server: Any) -> None:
    server = start_server(workers=2)
    workers = server.children()
    server.stop(signal.SIGKILL)
    wait_gone(workers)


def test_a_crashed_worker_is_replaced(start_server: Any) -> None:
    server = start_server(workers=2)
    first, second = server.children()
    time.sleep(2.2)  # past the start-up window in which a crash stops the server
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while first in server.children() or len(server.children()) < 2:
        assert time.monotonic() < deadline, server.children()
        time.sleep(0.05)
    assert second in server.children()
    wait_gone([first])
    assert keep_alive_latency(server.url, requests=20) < 1.0


def wait_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if is_alive(pid)]
        time.sleep(0.05)
    assert not alive, f"workers {alive} outlived the server"


def is_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"  # a zombie is dead, only not yet reaped by its new parent

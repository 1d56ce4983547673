"""The registry SDK through ``loopline server``: :class:`RegistryHttpClient` against a live server.

The server is the real app (uvicorn in a thread, fresh store); the SDK picks the
HTTP transport from an ``http://`` tracking URI, exactly as users do.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from loopline.client.client import Client
from loopline.client.factory import open_service
from loopline.config import Settings
from loopline.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.registry.client import RegistryClient
from loopline.registry.http import RegistryHttpClient
from loopline.server.app import create_app
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi import FastAPI

    from loopline.tracking.service import TrackingService


def with_registry(app: FastAPI) -> FastAPI:
    """The app with the registry's native router (a no-op once the app factory mounts it)."""
    from loopline.server.api import registry

    if not any(getattr(r, "path", "").startswith(registry.router.prefix) for r in app.routes):
        app.include_router(registry.router)
    return app


@contextlib.contextmanager
def serve(home: Path) -> Iterator[tuple[str, TrackingService]]:
    service = open_service(Settings(home=home))
    app = with_registry(create_app(service))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server thread died"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        service.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, TrackingService]]:
    with serve(tmp_path / "server") as found:
        yield found


@pytest.fixture
def settings(server: tuple[str, TrackingService], tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "client", tracking_uri=server[0], user="ada")


@pytest.fixture
def reg(settings: Settings) -> Iterator[RegistryClient]:
    client = RegistryClient(settings=settings)
    yield client
    client.close()


@pytest.fixture
def sdk(settings: Settings) -> Iterator[Client]:
    client = Client(settings=settings)
    yield client
    client.close()


def model_run(sdk: Client, weights: bytes, **params: str) -> str:
    run = sdk.create_run("0")
    for key, value in params.items():
        sdk.log_param(run.run_id, key, value)
    sdk.log_metric(run.run_id, "auc", 0.5 + len(weights) / 100)
    sdk.log_text(run.run_id, "flavor: sklearn\n", "model/loopline-model.yaml")
    sdk.log_bytes(run.run_id, weights, "model/weights.bin")
    sdk.set_terminated(run.run_id)
    return run.run_id


def test_the_client_picks_http_from_the_tracking_uri(reg: RegistryClient) -> None:
    assert isinstance(reg.transport, RegistryHttpClient)


def test_register_alias_resolve_and_download_over_http(
    reg: RegistryClient, sdk: Client, tmp_path: Path
) -> None:
    first = model_run(sdk, b"one", depth="3")
    second = model_run(sdk, b"twotwo", depth="5")
    v1 = reg.register_model(f"runs:/{first}/model", "churn", tags={"team": "ml"})
    v2 = reg.register_model(f"runs:/{second}/model", "churn", description="second")
    assert (v1.version, v1.flavor, v1.tags, v1.created_by) == (1, "sklearn", {"team": "ml"}, "ada")
    assert (v2.version, v2.description) == (2, "second")
    reg.set_alias("churn", "champion", 1)
    reg.set_alias("churn", "champion", 2, reason="better")
    assert reg.resolve("models:/churn@champion").version == 2
    assert reg.resolve("churn@1").run_id == first
    assert [
        (h.from_version, h.to_version, h.actor) for h in reg.alias_history("churn", "champion")
    ] == [
        (None, 1, "ada"),
        (1, 2, "ada"),
    ]
    out = reg.download_model("models:/churn@champion", tmp_path / "m")
    assert (out / "weights.bin").read_bytes() == b"twotwo"
    assert [v.version for v in reg.list_versions("churn")] == [1, 2]
    assert [m.name for m in reg.search_registered_models("name LIKE 'ch%'")] == ["churn"]
    comparison = reg.compare_versions("churn", 1, "champion")
    rows = {(r.section, r.key): r for r in comparison.rows}
    assert (rows["params", "depth"].a, rows["params", "depth"].b) == ("3", "5")
    assert isinstance(rows["metrics", "auc"].a, float)
    lineage = reg.lineage("churn@champion")
    assert (lineage.run_id, lineage.version) == (second, 2)


def test_reviews_and_protected_aliases_over_http(
    reg: RegistryClient, sdk: Client, settings: Settings
) -> None:
    reg.create_registered_model("fraud", require_approval=True)
    run_id = model_run(sdk, b"w")
    assert reg.register_model(f"runs:/{run_id}/model", "fraud").review_status == "pending_review"
    with pytest.raises(InvalidStateError, match="protected"):
        reg.set_alias("fraud", "prod", 1, protect=True)
    rita = RegistryClient(settings=settings.with_(user="rita"))
    try:
        decision = rita.approve("fraud", 1, "ok")
    finally:
        rita.close()
    assert (decision.reviewer, decision.comment) == ("rita", "ok")
    assert reg.set_alias("fraud", "prod", 1, protect=True).protected
    assert [r.decision for r in reg.list_reviews("fraud", 1)] == ["requested", "approved"]


def test_errors_come_back_as_their_classes(reg: RegistryClient, sdk: Client) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        reg.get_registered_model("ghost")
    reg.create_registered_model("churn")
    with pytest.raises(AlreadyExistsError):
        reg.create_registered_model("churn")
    with pytest.raises(InvalidArgumentError):
        reg.register_model("s3://bucket/x", "churn")
    run_id = model_run(sdk, b"w")
    reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.set_alias("churn", "champion", 1)
    with pytest.raises(InvalidStateError, match="champion"):
        reg.delete_model_version("churn", 1)
    reg.delete_model_version("churn", 1, force=True)
    with pytest.raises(NotFoundError):
        reg.resolve("churn@champion")


def test_downloads_refuse_files_damaged_on_the_server(
    reg: RegistryClient, sdk: Client, server: tuple[str, TrackingService], tmp_path: Path
) -> None:
    run_id = model_run(sdk, b"precious")
    v = reg.register_model(f"runs:/{run_id}/model", "churn")
    weights = next(f for f in reg.transport.model_files(v.uri).files if f.path == "weights.bin")
    blobs = server[1].blobs
    blobs.object_path(Digest.parse(weights.digest)).write_bytes(b"rotten!!")  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        reg.download_model(v.uri, tmp_path / "m")
    assert not (tmp_path / "m" / "weights.bin").exists()


def test_logged_models_over_http(reg: RegistryClient, sdk: Client, tmp_path: Path) -> None:
    run = sdk.create_run("0")
    logged = reg.create_logged_model("0", "model", source_run_id=run.run_id, params={"a": "1"})
    folder = tmp_path / "model"
    (folder / "nested").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    (folder / "nested" / "model.skops").write_bytes(b"s" * 3000)
    reg.log_logged_model_files(logged.model_id, folder)
    assert reg.finalize_logged_model(logged.model_id).flavor == "sklearn"
    v = reg.register_model(f"models:/{logged.model_id}", "clf")
    assert (v.logged_model_id, v.run_id) == (logged.model_id, run.run_id)
    out = reg.download_model(f"models:/{logged.model_id}", tmp_path / "out")
    assert (out / "nested" / "model.skops").read_bytes() == b"s" * 3000
    found, _ = reg.transport.search_logged_models(
        ["0"], filter_string=f"source_run_id = '{run.run_id}'"
    )
    assert [m.model_id for m in found] == [logged.model_id]


def test_names_with_slashes_travel_as_query_parameters(
    reg: RegistryClient, sdk: Client, server: tuple[str, TrackingService]
) -> None:
    run_id = model_run(sdk, b"w")
    reg.register_model(f"runs:/{run_id}/model", "team/churn")
    reg.set_alias("team/churn", "champion", 1)
    assert reg.resolve("team/churn@champion").name == "team/churn"
    answer = httpx.get(f"{server[0]}/api/v1/registry/model", params={"name": "team/churn"})
    assert answer.status_code == 200
    assert answer.json()["model"]["aliases"] == {"champion": 1}
    missing = httpx.get(f"{server[0]}/api/v1/registry/model", params={"name": "nope"})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

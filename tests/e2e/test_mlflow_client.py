"""The official mlflow client, unchanged, against a real ``loopline server``.

Each test starts uvicorn on a free local port over a fresh store and points
``mlflow`` at it. Retries are off (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``), so a
server error fails the test at once instead of hanging in the client's backoff.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import mlflow
import mlflow.artifacts
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from e2e.mlflow_conftest_helpers import LiveServer, live_server
from loopline.client.client import Client

if TYPE_CHECKING:
    from collections.abc import Iterator

ZERO_RUN = "0" * 32


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A live server with the global mlflow client pointed at it (and reset afterwards)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    with live_server(tmp_path / "store") as srv:
        mlflow.set_tracking_uri(srv.url)
        try:
            yield srv
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow_tracking_utils._artifact_repos_cache.clear()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """Raw HTTP to the server, for what the mlflow client would refuse to send."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def sdk(server: LiveServer) -> Iterator[Client]:
    """loopline's own SDK over the same store."""
    client = Client(settings=server.settings)
    yield client
    client.close()


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) >= {"error_code", "message"}, body
    return response.status_code, body["error_code"]


# -- runs, params, metrics, tags ------------------------------------------------------
def test_fluent_run_is_stored_with_everything_logged(server: LiveServer, sdk: Client) -> None:
    exp = mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "model": "rf"})
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        mlflow.set_tag("team", "fraud")
        mlflow.set_tags({"stage": "dev", "owner": "ana"})
    run_id = run.info.run_id
    assert len(run_id) == 32
    assert int(run_id, 16) >= 0

    got = MlflowClient().get_run(run_id)
    assert got.info.run_name == "first"
    assert got.info.experiment_id == exp.experiment_id
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None
    assert got.info.end_time >= got.info.start_time
    assert got.info.lifecycle_stage == "active"
    assert got.info.artifact_uri == f"mlflow-artifacts:/{exp.experiment_id}/{run_id}/artifacts"
    assert got.data.params == {"lr": "0.1", "depth": "3", "model": "rf"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8}
    assert got.data.tags["team"] == "fraud"
    assert got.data.tags["owner"] == "ana"
    assert got.data.tags["mlflow.runName"] == "first"
    assert got.info.user_id == got.data.tags["mlflow.user"]

    # The same run through loopline's own SDK.
    mine = sdk.get_run(run_id)
    assert mine.info.run_name == "first"
    assert mine.info.status == "FINISHED"
    assert mine.data.params == {"lr": "0.1", "depth": "3", "model": "rf"}
    assert mine.data.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8}
    assert mine.data.tags["stage"] == "dev"
    assert [m.step for m in sdk.get_metric_history(run_id, "loss")] == [1]


def test_default_experiment_exists_and_takes_runs(server: LiveServer) -> None:
    assert mlflow.get_experiment("0").name == "Default"
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.experiment_id == "0"
    assert got.info.run_name  # a generated name
    assert got.data.tags["mlflow.runName"] == got.info.run_name


def test_log_batch_and_metric_history(server: LiveServer, sdk: Client) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("batch")
    run = client.create_run(exp_id, run_name="batched")
    run_id = run.info.run_id
    points = [Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(50)]
    client.log_batch(
        run_id,
        metrics=points,
        params=[Param("optimizer", "adam"), Param("epochs", "50")],
        tags=[RunTag("kind", "batch")],
    )
    client.set_terminated(run_id)

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (p.step, p.value, p.timestamp) for p in points
    ]
    got = client.get_run(run_id)
    assert got.data.metrics["loss"] == points[-1].value
    assert got.data.params == {"optimizer": "adam", "epochs": "50"}
    assert got.data.tags["kind"] == "batch"
    assert [m.value for m in sdk.get_metric_history(run_id, "loss")] == [p.value for p in points]


def test_metric_history_pages(server: LiveServer, http: httpx.Client) -> None:
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("m", float(s), 1, s) for s in range(5)])
    steps: list[int] = []
    token: str | None = None
    for _ in range(5):
        params: dict[str, str | int] = {"run_id": run_id, "metric_key": "m", "max_results": 2}
        if token:
            params["page_token"] = token
        body = http.get("/api/2.0/mlflow/metrics/get-history", params=params).json()
        steps += [int(m["step"]) for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert steps == [0, 1, 2, 3, 4]


def test_nan_and_infinities_round_trip(server: LiveServer, sdk: Client) -> None:
    mlflow.set_experiment("floats")
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", math.nan)
        mlflow.log_metrics({"inf": math.inf, "ninf": -math.inf})
        MlflowClient().log_batch(
            run.info.run_id,
            metrics=[
                Metric("hist", v, 1, s) for s, v in enumerate([math.inf, math.nan, -math.inf, 1.5])
            ],
        )
    run_id = run.info.run_id
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf  # not clamped to 1.797e308 as MLflow's SQL store does
    assert metrics["ninf"] == -math.inf
    history = [m.value for m in MlflowClient().get_metric_history(run_id, "hist")]
    assert history[0] == math.inf
    assert math.isnan(history[1])
    assert history[2] == -math.inf
    assert history[3] == 1.5

    frame = mlflow.search_runs()
    assert frame.loc[0, "metrics.inf"] == math.inf
    assert math.isnan(frame.loc[0, "metrics.nan"])

    mine = sdk.get_run(run_id).data.metrics
    assert mine["inf"] == math.inf
    assert mine["ninf"] == -math.inf
    assert math.isnan(mine["nan"])


def test_param_may_repeat_but_not_change(server: LiveServer) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(MlflowException) as err:
            mlflow.log_param("lr", 0.2)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "lr" in err.value.message
        with pytest.raises(MlflowException) as err:
            mlflow.log_params({"lr": 0.3})
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert mlflow.get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_run_name_updates_and_tag_deletion(server: LiveServer) -> None:
    client = MlflowClient()
    run = client.create_run("0", run_name="before", tags={"temp": "x"})
    run_id = run.info.run_id
    client.update_run(run_id, name="after")
    got = client.get_run(run_id)
    assert got.info.run_name == "after"
    assert got.data.tags["mlflow.runName"] == "after"
    client.set_tag(run_id, "mlflow.runName", "by-tag")
    assert client.get_run(run_id).info.run_name == "by-tag"

    client.delete_tag(run_id, "temp")
    assert "temp" not in client.get_run(run_id).data.tags
    with pytest.raises(MlflowException) as err:
        client.delete_tag(run_id, "temp")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.set_terminated(run_id, status="FAILED")
    assert client.get_run(run_id).info.status == "FAILED"


def test_delete_and_restore_run(server: LiveServer) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("lifecycle")
    keep = client.create_run(exp_id).info.run_id
    drop = client.create_run(exp_id).info.run_id

    client.delete_run(drop)
    assert client.get_run(drop).info.lifecycle_stage == "deleted"

    def ids(view: int) -> set[str]:
        return {r.info.run_id for r in client.search_runs([exp_id], run_view_type=view)}

    assert ids(ViewType.ACTIVE_ONLY) == {keep}
    assert ids(ViewType.DELETED_ONLY) == {drop}
    assert ids(ViewType.ALL) == {keep, drop}
    with pytest.raises(MlflowException) as err:
        client.log_metric(drop, "x", 1.0)
    assert err.value.error_code == "INVALID_STATE"

    client.restore_run(drop)
    assert client.get_run(drop).info.lifecycle_stage == "active"
    assert ids(ViewType.ACTIVE_ONLY) == {keep, drop}


# -- search ----------------------------------------------------------------------------
def _seed_runs(client: MlflowClient, exp_id: str) -> dict[str, str]:
    """Five finished runs; returns run name -> run id."""
    made = {}
    for i, (model, acc) in enumerate(
        [("rf", 0.70), ("rf", 0.91), ("lr", 0.65), ("rf", 0.55), ("xgb", 0.95)]
    ):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", acc, 1, 0)],
            params=[Param("model", model)],
            tags=[RunTag("idx", str(i))],
        )
        client.set_terminated(run.info.run_id)
        made[f"run-{i}"] = run.info.run_id
    return made


def test_search_runs_dataframe_with_filter_and_order(server: LiveServer) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("search")
    made = _seed_runs(client, exp_id)

    frame = mlflow.search_runs(
        experiment_ids=[exp_id],
        filter_string="metrics.acc > 0.6 and params.model = 'rf'",
        order_by=["metrics.acc DESC"],
    )
    assert list(frame["run_id"]) == [made["run-1"], made["run-0"]]
    assert list(frame["metrics.acc"]) == [0.91, 0.70]
    assert set(frame["params.model"]) == {"rf"}

    by_name = mlflow.search_runs(
        experiment_names=["search"], filter_string="tags.mlflow.runName = 'run-4'"
    )
    assert list(by_name["run_id"]) == [made["run-4"]]

    runs = client.search_runs(
        [exp_id], filter_string="attributes.status = 'FINISHED'", order_by=["params.model ASC"]
    )
    assert [r.data.params["model"] for r in runs] == ["lr", "rf", "rf", "rf", "xgb"]


def test_search_runs_pages_with_tokens(server: LiveServer) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("pages")
    made = _seed_runs(client, exp_id)

    seen: list[str] = []
    sizes: list[int] = []
    token = None
    for _ in range(10):
        page = client.search_runs(
            [exp_id], order_by=["metrics.acc ASC"], max_results=2, page_token=token
        )
        seen += [r.info.run_id for r in page]
        sizes.append(len(page))
        token = page.token
        if not token:
            break
    assert sizes == [2, 2, 1]
    assert seen == [made[n] for n in ("run-3", "run-2", "run-0", "run-1", "run-4")]


# -- experiments -------------------------------------------------------------------------
def test_experiments_create_get_search_rename(server: LiveServer, sdk: Client) -> None:
    client = MlflowClient()
    ids = {
        name: client.create_experiment(name, tags={"team": team})
        for name, team in [("fraud-a", "risk"), ("fraud-b", "risk"), ("churn", "growth")]
    }
    fraud = client.get_experiment_by_name("fraud-a")
    assert fraud is not None
    assert fraud.experiment_id == ids["fraud-a"]
    assert fraud.tags == {"team": "risk"}
    assert fraud.lifecycle_stage == "active"
    assert fraud.artifact_location == f"mlflow-artifacts:/{ids['fraud-a']}"
    assert client.get_experiment_by_name("nope") is None

    def names(**kwargs: object) -> list[str]:
        return [e.name for e in mlflow.search_experiments(**kwargs)]  # type: ignore[arg-type]

    assert sorted(names(filter_string="name LIKE 'fraud%'")) == ["fraud-a", "fraud-b"]
    assert names(filter_string="name = 'churn'") == ["churn"]
    assert names(filter_string="tags.team = 'growth'") == ["churn"]
    assert names(order_by=["name ASC"]) == ["Default", "churn", "fraud-a", "fraud-b"]

    client.set_experiment_tag(ids["churn"], "team", "retention")
    assert client.get_experiment(ids["churn"]).tags["team"] == "retention"
    # MLflow's note is loopline's description, both ways.
    client.set_experiment_tag(ids["churn"], "mlflow.note.content", "who leaves and why")
    assert sdk.get_experiment(ids["churn"]).description == "who leaves and why"
    assert client.get_experiment(ids["churn"]).tags["mlflow.note.content"] == "who leaves and why"
    client.rename_experiment(ids["churn"], "churn-v2")
    assert client.get_experiment(ids["churn"]).name == "churn-v2"

    with pytest.raises(MlflowException) as err:
        client.create_experiment("fraud-a")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_experiments_delete_restore_and_pages(server: LiveServer) -> None:
    client = MlflowClient()
    ids = [client.create_experiment(f"exp-{i}") for i in range(5)]
    run_id = client.create_run(ids[0]).info.run_id

    client.delete_experiment(ids[0])
    assert client.get_experiment(ids[0]).lifecycle_stage == "deleted"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    active = {e.experiment_id for e in client.search_experiments()}
    assert ids[0] not in active
    assert ids[1] in active
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [ids[0]]
    assert len(client.search_experiments(view_type=ViewType.ALL)) == 6
    with pytest.raises(MlflowException):
        mlflow.set_experiment("exp-0")  # a deleted experiment cannot be made active

    client.restore_experiment(ids[0])
    assert client.get_experiment(ids[0]).lifecycle_stage == "active"
    assert client.get_run(run_id).info.lifecycle_stage == "active"

    seen: list[str] = []
    token = None
    for _ in range(10):
        page = client.search_experiments(
            max_results=2, order_by=["experiment_id ASC"], page_token=token
        )
        seen += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    assert seen == ["0", *ids]


# -- artifacts ---------------------------------------------------------------------------
def test_artifacts_log_list_download(server: LiveServer, sdk: Client, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "plots").mkdir(parents=True)
    (src / "model.txt").write_text("weights")
    (src / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    single = tmp_path / "single.bin"
    single.write_bytes(bytes(range(256)))

    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="nested/deeper")
        mlflow.log_artifacts(str(src), artifact_path="bundle")
        mlflow.log_text("hello mlflow", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2], "nested": {"x": True}}, "config.json")
    run_id = run.info.run_id
    client = MlflowClient()

    top = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert top == {
        ("single.bin", False),
        ("nested", True),
        ("bundle", True),
        ("notes", True),
        ("config.json", False),
    }
    bundle = client.list_artifacts(run_id, "bundle")
    assert {(f.path, f.is_dir) for f in bundle} == {
        ("bundle/model.txt", False),
        ("bundle/plots", True),
    }
    sizes = {f.path: f.file_size for f in mlflow.artifacts.list_artifacts(run_id=run_id)}
    assert sizes["single.bin"] == 256

    out = tmp_path / "out"
    out.mkdir()
    folder = Path(client.download_artifacts(run_id, "bundle", str(out)))
    assert (folder / "model.txt").read_text() == "weights"
    assert (folder / "plots" / "roc.csv").read_text().startswith("fpr,tpr")
    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="nested/deeper/single.bin"
    )
    assert Path(one).read_bytes() == bytes(range(256))
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello mlflow"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {
        "k": [1, 2],
        "nested": {"x": True},
    }
    everything = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all"))
    )
    assert (everything / "bundle" / "plots" / "roc.csv").is_file()

    # loopline's SDK sees the same files.
    assert sdk.read_artifact(run_id, "notes/hello.txt") == b"hello mlflow"
    assert json.loads(sdk.read_artifact(run_id, "config.json"))["nested"] == {"x": True}
    assert {a.path for a in sdk.list_artifacts(run_id, "bundle")} == {
        "bundle/model.txt",
        "bundle/plots",
    }


def test_large_artifact_streams_both_ways(server: LiveServer, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    payload = bytes(range(256)) * (6 * 4096 + 7)  # about 6 MiB: spilled to disk on upload
    big.write_bytes(payload)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big))
    got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="big.bin")
    assert Path(got).read_bytes() == payload


def test_runs_made_by_loopline_sdk_serve_their_artifacts(server: LiveServer, sdk: Client) -> None:
    exp_id = sdk.create_experiment("native")
    info = sdk.create_run(exp_id, run_name="native-run")
    sdk.log_metric(info.run_id, "auc", 0.8, step=3)
    sdk.log_text(info.run_id, "from loopline", "readme.md")
    sdk.set_terminated(info.run_id)

    got = MlflowClient().get_run(info.run_id)
    assert got.info.run_name == "native-run"
    assert got.data.metrics == {"auc": 0.8}
    assert got.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{info.run_id}/artifacts"
    assert mlflow.artifacts.load_text(f"runs:/{info.run_id}/readme.md") == "from loopline"


def test_artifact_paths_that_escape_are_refused(server: LiveServer, http: httpx.Client) -> None:
    run = MlflowClient().create_run("0")
    root = f"/api/2.0/mlflow-artifacts/artifacts/0/{run.info.run_id}/artifacts"
    attempts = [
        http.put(f"{root}/%2E%2E/%2E%2E/escape.txt", content=b"x"),
        http.put(f"{root}/a%00b", content=b"x"),
        http.get(f"{root}/%2E%2E/%2E%2E/%2E%2E/etc/passwd"),
        http.get(
            "/api/2.0/mlflow-artifacts/artifacts",
            params={"path": f"0/{run.info.run_id}/artifacts/../../.."},
        ),
        http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "/etc"}),
        http.get(
            "/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "../x"}
        ),
    ]
    for response in attempts:
        assert _error(response) == (400, "INVALID_PARAMETER_VALUE"), response.request.url
        message = response.json()["message"]
        assert any(why in message for why in ("'..'", "NUL", "absolute")), message
    assert MlflowClient().list_artifacts(run.info.run_id) == []


def test_upload_over_the_body_limit_is_refused(tmp_path: Path) -> None:
    with (
        live_server(tmp_path / "small", max_body_bytes=1024) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as http,
    ):
        run_id = Client(settings=srv.settings).create_run("0").run_id
        url = f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/big.bin"
        assert _error(http.put(url, content=b"x" * 2048)) == (413, "REQUEST_LIMIT_EXCEEDED")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
            for _ in range(4):
                yield b"y" * 512

        assert _error(http.put(url, content=chunks())) == (413, "REQUEST_LIMIT_EXCEEDED")
        assert srv.service.list_artifacts(run_id) == []


# -- wire rules --------------------------------------------------------------------------
def test_unknown_ids_are_resource_does_not_exist(server: LiveServer, http: httpx.Client) -> None:
    client = MlflowClient()
    for call in (
        lambda: client.get_run(ZERO_RUN),
        lambda: client.log_metric(ZERO_RUN, "m", 1.0),
        lambda: client.get_metric_history(ZERO_RUN, "m"),
        lambda: client.delete_run(ZERO_RUN),
        lambda: client.get_experiment("987654"),
        lambda: client.list_artifacts(ZERO_RUN),
    ):
        with pytest.raises(MlflowException) as err:
            call()
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    assert _error(http.get("/api/2.0/mlflow/runs/get", params={"run_id": ZERO_RUN})) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    missing = http.get(f"/api/2.0/mlflow-artifacts/artifacts/0/{ZERO_RUN}/artifacts/x.txt")
    assert _error(missing) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert _error(http.get("/ajax-api/2.0/mlflow/experiments/get?experiment_id=abc")) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_log_batch_limits_are_mlflows(server: LiveServer, http: httpx.Client) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    url = "/api/2.0/mlflow/runs/log-batch"
    cases = {
        "metrics": [{"key": f"m{i}", "value": 1, "timestamp": 1, "step": 0} for i in range(1001)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(101)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(101)],
    }
    for what, items in cases.items():
        response = http.post(url, json={"run_id": run_id, what: items})
        assert _error(response) == (400, "INVALID_PARAMETER_VALUE")
        assert f"at most {len(items) - 1} {what}" in response.json()["message"]
    full = {
        "run_id": run_id,
        "metrics": cases["metrics"][:1000],
        "params": cases["params"][:100],
    }
    assert _error(http.post(url, json=full)) == (400, "INVALID_PARAMETER_VALUE")  # 1100 in all
    full["metrics"] = cases["metrics"][:900]
    assert http.post(url, json=full).status_code == 200


def test_bad_requests_never_answer_5xx(server: LiveServer, http: httpx.Client) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    bad = [
        http.post(
            "/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id, "key": "m", "value": "abc"}
        ),
        http.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id, "value": 1}),
        http.post("/api/2.0/mlflow/runs/log-parameter", json={"key": "p", "value": "v"}),
        http.post("/api/2.0/mlflow/runs/update", json={"run_id": run_id, "status": "BOGUS"}),
        http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "999"}),
        http.post(
            "/api/2.0/mlflow/runs/create",
            json={"run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]},
        ),
        http.post(
            "/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a >"}
        ),
        http.post(
            "/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"], "page_token": "garbage"}
        ),
        http.post(
            "/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"], "max_results": 50001}
        ),
        http.post(
            "/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"], "run_view_type": "SOME"}
        ),
        http.post("/api/2.0/mlflow/experiments/search", json={"filter": "name ~ 'x'"}),
        http.post("/api/2.0/mlflow/experiments/search", json={"filter": "owner = 'x'"}),
        http.post("/api/2.0/mlflow/experiments/search", json={"page_token": "%%%"}),
        http.post("/api/2.0/mlflow/experiments/search", json={"order_by": ["size DESC"]}),
        http.post("/api/2.0/mlflow/experiments/create", json={"name": ""}),
        http.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": "0"}),
        http.post(
            "/api/2.0/mlflow/runs/log-batch",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        http.post("/api/2.0/mlflow/runs/set-tag", json={"run_id": run_id, "key": "x" * 300}),
        http.delete(f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/a.txt"),
        http.get("/api/2.0/mlflow/no-such-endpoint"),
    ]
    for response in bad:
        assert 400 <= response.status_code < 500 or response.status_code == 501, (
            response.request.url,
            response.status_code,
            response.text,
        )
        _error(response)


def test_ui_prefix_and_server_info(server: LiveServer, http: httpx.Client) -> None:
    ajax = http.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert ajax.json()["experiment"]["name"] == "Default"
    searched = http.post("/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 10})
    assert [e["experiment_id"] for e in searched.json()["experiments"]] == ["0"]
    info = http.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    assert http.get("/ajax-api/3.0/mlflow/server-info").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert "/api/2.0/mlflow/runs/log-batch" in paths
    assert not any(p.startswith("/ajax-api") for p in paths)


def test_every_mlflow_route_resolves_the_caller_and_service() -> None:
    from fastapi.routing import APIRoute

    from loopline.server.deps import caller, service
    from loopline.server.mlflow_compat import routers

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

    mounted = [route for router in routers() for route in routes(router)]
    assert len(mounted) >= 2 * 30  # /api and /ajax-api
    for route in mounted:
        needed = {caller} if route.path.endswith("/server-info") else {caller, service}
        assert needed <= calls(route.dependant), route.path

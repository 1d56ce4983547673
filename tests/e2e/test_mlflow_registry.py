"""The official mlflow client's model registry and MLflow 3 logged models against ``loopline server``.

``mlflow.sklearn.log_model(..., registered_model_name=...)`` logs a logged model,
uploads its files through the artifact proxy, finalizes it and registers it;
aliases, searches and ``mlflow.pyfunc.load_model("models:/m@champion")`` then go
through loopline's registry, and loopline's own SDK sees the same versions.
Retries are off (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``): a server error fails at once.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from e2e.mlflow_conftest_helpers import LiveServer, live_server
from loopline.registry.client import RegistryClient

with warnings.catch_warnings():  # mlflow's pyfunc warns about its own type hints on import
    warnings.simplefilter("ignore")
    import mlflow.pyfunc
    import mlflow.sklearn

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*get_latest_versions.*:FutureWarning"),
]

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    with live_server(tmp_path / "store") as srv:
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_registry_uri(srv.url)
        try:
            yield srv
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
            mlflow_tracking_utils._artifact_repos_cache.clear()


@pytest.fixture
def ours(server: LiveServer) -> Iterator[RegistryClient]:
    client = RegistryClient(settings=server.settings)
    yield client
    client.close()


def ours_of(server: LiveServer) -> RegistryClient:
    return RegistryClient(settings=server.settings)


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


def _log(name: str = "m", c: float = 1.0) -> Any:
    x, y = _data()
    model = LogisticRegression(C=c).fit(x, y)
    with mlflow.start_run() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.log_param("C", c)
        mlflow.log_metric("accuracy", float(model.score(x, y)))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            serialization_format="skops",
            input_example=x[:2],
            pip_requirements=["scikit-learn", "skops"],  # skips the slow inference
        )
    return model, run, info


def test_log_model_registers_a_version_loopline_sees(
    server: LiveServer, ours: RegistryClient
) -> None:
    _, run, info = _log()
    assert str(info.registered_model_version) == "1"
    assert info.model_id.startswith("m-")
    client = MlflowClient()
    version = client.get_model_version("m", "1")
    assert (version.name, version.version, version.run_id, version.status) == (
        "m",
        "1",
        run.info.run_id,
        "READY",
    )
    assert version.source == f"models:/{info.model_id}"  # (the client drops model_id)
    logged = client.get_logged_model(info.model_id)
    assert logged.status.to_proto() == logged.status.READY.to_proto()  # type: ignore[attr-defined]
    assert logged.source_run_id == run.info.run_id
    assert '"version": "1"' in logged.tags["mlflow.modelVersions"]
    mine = ours.get_model_version("m", 1)
    assert (mine.run_id, mine.logged_model_id, mine.flavor) == (
        run.info.run_id,
        info.model_id,
        "sklearn",
    )
    paths = [f.path for f in ours.transport.model_files("models:/m/1").files]
    assert {"MLmodel", "model.skops"} <= set(paths)


def test_aliases_and_loading_by_alias(server: LiveServer, ours: RegistryClient) -> None:
    model, _, _ = _log(c=0.5)
    _log(c=2.0)
    client = MlflowClient()
    client.set_registered_model_alias("m", "champion", 1)
    by_alias = client.get_model_version_by_alias("m", "champion")
    assert (by_alias.version, by_alias.aliases) == ("1", ["champion"])
    assert client.get_registered_model("m").aliases == {"champion": "1"}
    loaded = mlflow.pyfunc.load_model("models:/m@champion")
    x, _ = _data()
    assert (loaded.predict(x) == model.predict(x)).all()
    client.set_registered_model_alias("m", "champion", 2)
    assert ours.resolve("m@champion").version == 2
    assert [(h.from_version, h.to_version) for h in ours.alias_history("m", "champion")] == [
        (None, 1),
        (1, 2),
    ]
    client.delete_registered_model_alias("m", "champion")
    with pytest.raises(MlflowException) as caught:
        client.get_model_version_by_alias("m", "champion")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_update_tags_and_delete(server: LiveServer) -> None:
    _log()
    _log()
    _log(name="other")
    client = MlflowClient()
    found = client.search_model_versions("name = 'm'")
    assert sorted(v.version for v in found) == ["1", "2"]
    models = client.search_registered_models(filter_string="name LIKE 'm%'")
    assert [m.name for m in models] == ["m"]
    assert [v.version for v in models[0].latest_versions] == ["2"]
    assert [v.version for v in client.get_latest_versions("m")] == ["2"]
    client.update_model_version("m", "1", description="baseline")
    assert client.get_model_version("m", "1").description == "baseline"
    client.set_model_version_tag("m", "1", "validated", "yes")
    client.set_registered_model_tag("m", "team", "fraud")
    assert client.get_model_version("m", "1").tags == {"validated": "yes"}
    client.delete_model_version_tag("m", "1", "validated")
    assert client.get_model_version("m", "1").tags == {}
    client.update_registered_model("m", description="the model")
    rm = client.get_registered_model("m")
    assert (rm.description, rm.tags) == ("the model", {"team": "fraud"})
    uri = client.get_model_version_download_uri("m", "1")
    assert uri.startswith("mlflow-artifacts:/model-versions/")
    client.rename_registered_model("other", "renamed")
    assert client.get_registered_model("renamed").name == "renamed"
    client.delete_model_version("m", "2")
    assert [v.version for v in client.search_model_versions("name = 'm'")] == ["1"]
    client.delete_registered_model("renamed")
    with pytest.raises(MlflowException) as caught:
        client.get_registered_model("renamed")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_registry_errors_follow_mlflow_wire_rules(server: LiveServer) -> None:
    client = MlflowClient()
    client.create_registered_model("m")
    with pytest.raises(MlflowException) as caught:
        client.create_registered_model("m")
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as caught:
        client.get_model_version("m", "7")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as caught:
        client.set_registered_model_alias("m", "champion", 3)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_logged_models_search_and_load_by_model_id(server: LiveServer) -> None:
    model, run, info = _log()
    client = MlflowClient()
    found = client.search_logged_models(experiment_ids=["0"], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [info.model_id]
    loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    x, _ = _data()
    assert (loaded.predict(x) == model.predict(x)).all()
    client.set_logged_model_tags(info.model_id, {"reviewed": "no"})
    client.delete_logged_model_tag(info.model_id, "reviewed")
    assert "reviewed" not in client.get_logged_model(info.model_id).tags
    # an MLflow 3 run's artifacts include the models logged from it
    names = [f.path for f in client.list_artifacts(run.info.run_id, "model")]
    assert "model/MLmodel" in names
    # registering runs:/RUN/model goes through the logged model of that name
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "from-run")
    assert version.version == "1"
    assert ours_of(server).get_model_version("from-run", 1).logged_model_id == info.model_id

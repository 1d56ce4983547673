"""``loopline server --auth`` as a process: the SDK, the official MLflow client (token and
basic auth) and the CLI against it; nothing secret reaches its logs."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from loopline.auth.roles import Role
from loopline.auth.store import AuthStore
from loopline.client.client import Client
from loopline.config import Settings
from loopline.store.metadata import Database

from .conftest import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "sesame-open-42"


def _cli(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, "LOOPLINE_HOME": str(home), **(env or {})}
    for name in ("LOOPLINE_TRACKING_URI", "LOOPLINE_TRACKING_TOKEN"):
        if env is None or name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", *args],
        env=full,
        capture_output=True,
        text=True,
        input=PASSWORD + "\n",
        timeout=120,
        check=False,
    )


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path / "home"
    made = _cli(home, "users", "create", "root", "--admin", "--password-stdin")
    assert made.returncode == 0, made.stderr
    store = AuthStore(Database(Settings(home=home).metadata_url))
    store.create_user("ana", PASSWORD)
    store.set_member("default", "ana", Role.EDITOR, actor="root")
    tokens = {"root": store.create_token("root")[0], "ana": store.create_token("ana")[0]}
    store.db.close()
    monkeypatch.setenv("LOOPLINE_AUTH", "1")
    server = ServerProcess(home, log_level="info", access_log=True)
    try:
        yield server, tokens
    finally:
        server.stop()


def test_sdk_mlflow_client_and_cli_authenticate_and_secrets_stay_out_of_logs(
    served: tuple[ServerProcess, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, tokens = served
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/api/v1/experiments").status_code == 401

    # loopline's SDK: Settings.token is LOOPLINE_TRACKING_TOKEN.
    sdk = Client(
        settings=Settings(home=tmp_path / "c", tracking_uri=server.url, token=tokens["ana"])
    )
    try:
        exp = sdk.create_experiment("from-sdk")
        run = sdk.create_run(exp)
        sdk.log_metric(run.run_id, "auc", 0.9)
        sdk.flush()
        assert sdk.get_run(run.run_id).data.metrics["auc"] == 0.9
    finally:
        sdk.close()

    # The official MLflow client with a token, then with basic auth.
    mlflow.set_tracking_uri(server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
    client = MlflowClient(server.url)
    exp_id = client.create_experiment("from-mlflow")
    mrun = client.create_run(exp_id)
    client.log_metric(mrun.info.run_id, "loss", 0.5)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert MlflowClient(server.url).get_run(mrun.info.run_id).data.metrics == {"loss": 0.5}
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong password")
    with pytest.raises(MlflowException):
        MlflowClient(server.url).get_run(mrun.info.run_id)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException):
        MlflowClient(server.url).get_experiment(exp_id)

    # The CLI through the server: ana lists her tokens, cannot read the audit log; root can.
    remote = {"LOOPLINE_TRACKING_URI": server.url, "LOOPLINE_TRACKING_TOKEN": tokens["ana"]}
    listed = _cli(tmp_path, "tokens", "list", "--json", env=remote)
    assert listed.returncode == 0, listed.stderr
    assert tokens["ana"] not in listed.stdout
    denied = _cli(tmp_path, "audit", "list", env=remote)
    assert denied.returncode == 1
    assert "server administrator" in denied.stderr
    admin = {**remote, "LOOPLINE_TRACKING_TOKEN": tokens["root"]}
    exported = _cli(tmp_path, "audit", "export", "--actor", "ana", env=admin)
    assert exported.returncode == 0, exported.stderr
    assert '"path":"/api/2.0/mlflow/runs/log-metric"' in exported.stdout

    server.stop()
    logs = server.log.read_text()
    while not server.lines.empty():  # stdout: the start-up line and the access log
        logs += server.lines.get()
    assert "/api/2.0/mlflow/runs/log-metric" in logs  # the access log was on
    for secret in (*tokens.values(), PASSWORD):
        assert secret not in logs


def test_the_cli_turns_auth_on_for_non_loopback_binds_unless_told_otherwise() -> None:
    from loopline.auth.bind import is_loopback

    assert is_loopback("127.0.0.1")
    assert not is_loopback("0.0.0.0")
    result = subprocess.run(
        [sys.executable, "-m", "loopline.cli.main", "server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--no-auth" in result.stdout


def test_serve_called_directly_enforces_auth_off_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOOPLINE_AUTH", raising=False)
    wide = ServerProcess(tmp_path / "wide", host="0.0.0.0")
    try:
        port = wide.url.rsplit(":", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        wide.stop()
    monkeypatch.setenv("LOOPLINE_AUTH", "0")  # explicitly off: the operator's choice
    opened = ServerProcess(tmp_path / "opened", host="0.0.0.0")
    try:
        port = opened.url.rsplit(":", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/experiments").status_code == 200
    finally:
        opened.stop()


def test_settings_read_the_auth_switch() -> None:
    assert Settings.from_env({"LOOPLINE_HOME": "/tmp/x"}).auth is None
    assert Settings.from_env({"LOOPLINE_HOME": "/tmp/x", "LOOPLINE_AUTH": "1"}).auth is True
    assert Settings.from_env({"LOOPLINE_HOME": "/tmp/x", "LOOPLINE_AUTH": "no"}).auth is False


@pytest.mark.slow  # two worker processes start; the contract test covers the counting fast
def test_the_per_user_request_limit_holds_across_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "limited"
    store = AuthStore(Database(Settings(home=home).metadata_url))
    store.create_user("ana", None)
    store.set_member("default", "ana", Role.VIEWER, actor="ana")
    token = store.create_token("ana")[0]
    store.create_user("bo", None)
    other = store.create_token("bo")[0]
    store.db.close()
    monkeypatch.setenv("LOOPLINE_AUTH", "1")
    monkeypatch.setenv("LOOPLINE_AUTH_RATE_LIMIT", "10")
    server = ServerProcess(home, workers=2)
    try:
        answers = []
        for _ in range(25):  # a new connection each time: both workers take some
            answers.append(
                httpx.get(
                    f"{server.url}/api/v1/experiments",
                    headers={"authorization": f"Bearer {token}"},
                )
            )
        allowed = sum(a.status_code == 200 for a in answers)
        assert 10 <= allowed <= 10 + 2, allowed
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        bo = httpx.get(f"{server.url}/api/v1/auth/me", headers={"authorization": f"Bearer {other}"})
        assert bo.status_code == 200
    finally:
        server.stop()

"""The ``loopline`` command line, through typer's runner and as the installed script.

Every test has its own ``LOOPLINE_HOME`` (tests/conftest.py); runs are created
with the SDK, then read, compared, deleted and collected with the CLI.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner, Result

from loopline._version import __version__
from loopline.cli._errors import LooplineGroup
from loopline.cli.main import app
from loopline.client.client import Client
from loopline.config import Settings
from loopline.errors import CheckFailedError
from loopline.store.metadata import HEAD_REVISION, Database
from loopline.store.metadata.database import VERSION_TABLE

if TYPE_CHECKING:
    from collections.abc import Callable

LOOPLINE = Path(sys.executable).with_name("loopline")


@pytest.fixture
def cli() -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), prog_name="loopline")

    return invoke


@pytest.fixture
def client() -> Any:
    sdk = Client(settings=Settings.from_env())
    yield sdk
    sdk.close()


def _log_run(
    client: Client,
    experiment_id: str,
    name: str,
    *,
    params: dict[str, str],
    metrics: dict[str, float],
    artifact: bytes | None = None,
) -> str:
    run = client.create_run(experiment_id, run_name=name)
    for key, value in params.items():
        client.log_param(run.run_id, key, value)
    for key, value in metrics.items():
        for step in range(3):
            client.log_metric(run.run_id, key, value - (2 - step) * 0.1, step=step)
    if artifact is not None:
        client.log_bytes(run.run_id, artifact, "model/weights.bin")
    client.set_terminated(run.run_id)
    return run.run_id


@pytest.fixture
def two_runs(client: Client) -> tuple[str, str]:
    exp = client.create_experiment("churn")
    rf = _log_run(client, exp, "rf", params={"model": "rf", "depth": "8"}, metrics={"auc": 0.91})
    lr = _log_run(
        client,
        exp,
        "lr",
        params={"model": "lr", "depth": "8"},
        metrics={"auc": 0.87, "loss": 0.3},
        artifact=b"weights",
    )
    return rf, lr


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- global -------------------------------------------------------------------------
def test_version(cli: Callable[..., Result]) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopline {__version__}"


def test_help_lists_commands_and_exit_codes(cli: Callable[..., Result]) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("experiments", "runs", "db", "gc", "server", "--tracking-uri"):
        assert command in result.stdout
    assert "Exit codes: 0 success, 1 error, 2 usage error, 3" in " ".join(result.stdout.split())


def test_no_arguments_shows_help(cli: Callable[..., Result]) -> None:
    result = cli()
    assert result.exit_code in (0, 2)
    assert "Usage" in result.output


def test_bad_usage_exits_2(cli: Callable[..., Result]) -> None:
    assert cli("runs", "list", "--no-such-option").exit_code == 2
    assert cli("no-such-command").exit_code == 2
    assert cli("runs", "list", "--max-results", "zero").exit_code == 2
    assert cli("runs", "list", "--view", "sideways").exit_code == 2
    assert cli("gc", "--older-than", "soon").exit_code == 2


def test_errors_print_message_and_hint_without_traceback(cli: Callable[..., Result]) -> None:
    result = cli("runs", "show", "0123456789abcdef")
    assert result.exit_code == 1
    assert "error: run 0123456789abcdef does not exist" in result.stderr
    assert "hint: list runs with `loopline runs list`" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_a_failed_check_exits_3() -> None:
    demo = typer.Typer(cls=LooplineGroup)

    @demo.command()
    def gate() -> None:
        raise CheckFailedError("auc 0.71 is below the gate's 0.8", hint="see the report")

    @demo.command()
    def other() -> None:  # a group needs two commands to dispatch by name
        pass

    result = CliRunner().invoke(demo, ["gate"])
    assert result.exit_code == 3
    assert "error: auc 0.71 is below the gate's 0.8" in result.stderr
    assert "hint: see the report" in result.stderr


# -- experiments --------------------------------------------------------------------
def test_experiments_create_list_delete_restore(cli: Callable[..., Result]) -> None:
    created = cli("experiments", "create", "churn", "-d", "Churn model", "-t", "team=ml")
    assert created.exit_code == 0, created.output
    assert "created experiment 'churn' with id" in created.stdout

    listed = _json(cli("experiments", "list", "--json"))
    by_name = {e["name"]: e for e in listed}
    assert set(by_name) == {"Default", "churn"}
    assert by_name["churn"]["description"] == "Churn model"
    assert by_name["churn"]["tags"] == {"team": "ml"}
    assert set(by_name["churn"]) >= {"experiment_id", "name", "lifecycle_stage", "tags"}
    assert "churn" in cli("experiments", "list").stdout

    deleted = cli("experiments", "delete", "churn")
    assert deleted.exit_code == 0, deleted.output
    assert [e["name"] for e in _json(cli("experiments", "list", "--json"))] == ["Default"]
    gone = _json(cli("experiments", "list", "--view", "deleted", "--json"))
    assert [e["name"] for e in gone] == ["churn"]

    exp_id = gone[0]["experiment_id"]
    assert cli("experiments", "restore", exp_id).exit_code == 0
    assert {e["name"] for e in _json(cli("experiments", "list", "--json"))} == {
        "Default",
        "churn",
    }


def test_experiment_errors(cli: Callable[..., Result]) -> None:
    assert cli("experiments", "create", "churn").exit_code == 0
    again = cli("experiments", "create", "churn")
    assert again.exit_code == 1
    assert "error: experiment 'churn' already exists" in again.stderr
    assert cli("experiments", "create", "123").exit_code == 2  # names may not be all digits
    missing = cli("experiments", "delete", "nope")
    assert missing.exit_code == 1
    assert "experiment 'nope' does not exist" in missing.stderr
    assert cli("experiments", "create", "x", "--tag", "no-equals-sign").exit_code == 2


# -- runs -----------------------------------------------------------------------------
def test_runs_list_filters_orders_and_prints_json(
    cli: Callable[..., Result], two_runs: tuple[str, str]
) -> None:
    rf, lr = two_runs
    found = _json(cli("runs", "list", "--experiment", "churn", "--json", "-o", "metrics.auc"))
    assert [r["run_id"] for r in found] == [lr, rf]
    assert set(found[0]) == {
        "run_id",
        "run_name",
        "experiment_id",
        "experiment_name",
        "status",
        "lifecycle_stage",
        "start_time",
        "end_time",
        "user_id",
        "parent_run_id",
        "artifact_uri",
        "params",
        "metrics",
        "tags",
    }
    assert found[0]["experiment_name"] == "churn"
    assert found[0]["params"] == {"depth": "8", "model": "lr"}
    assert found[0]["metrics"] == {"auc": pytest.approx(0.87), "loss": pytest.approx(0.3)}

    filtered = _json(
        cli("runs", "list", "-f", "metrics.auc > 0.9 and params.model = 'rf'", "--json")
    )
    assert [r["run_id"] for r in filtered] == [rf]
    assert _json(cli("runs", "list", "-f", "params.model = 'svm'", "--json")) == []
    assert len(_json(cli("runs", "list", "--max-results", "1", "--json"))) == 1


def test_runs_list_table(cli: Callable[..., Result], two_runs: tuple[str, str]) -> None:
    result = cli("runs", "list", "-e", "churn", "--order-by", "metrics.auc DESC")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert two_runs[0] in text
    assert two_runs[1] in text
    assert text.index(two_runs[0]) < text.index(two_runs[1])  # rf (0.91) first
    assert "2 runs" in text
    assert "auc" in text


def test_runs_list_bad_filter_names_the_position(
    cli: Callable[..., Result], two_runs: tuple[str, str]
) -> None:
    result = cli("runs", "list", "--filter", "metrics.auc >> 1")
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "position" in result.stderr
    assert "Traceback" not in result.output


def test_runs_show(cli: Callable[..., Result], two_runs: tuple[str, str]) -> None:
    _, lr = two_runs
    shown = _json(cli("runs", "show", lr, "--json"))
    assert shown["run_id"] == lr
    assert shown["run_name"] == "lr"
    assert shown["status"] == "FINISHED"
    assert shown["params"] == {"depth": "8", "model": "lr"}
    assert shown["artifacts"] == [
        {"path": "model/weights.bin", "size": 7, "digest": shown["artifacts"][0]["digest"]}
    ]
    assert shown["artifacts"][0]["digest"].startswith("blake3:")

    table = cli("runs", "show", lr)
    assert table.exit_code == 0, table.output
    for expected in ("lr", "churn", "FINISHED", "model", "auc", "0.87", "model/weights.bin"):
        assert expected in table.stdout


def test_runs_compare(cli: Callable[..., Result], two_runs: tuple[str, str]) -> None:
    rf, lr = two_runs
    compared = _json(cli("runs", "compare", rf, lr, "--json"))
    assert [r["run_id"] for r in compared["runs"]] == [rf, lr]
    params = {p["key"]: p for p in compared["params"]}
    assert params["model"] == {"key": "model", "values": ["rf", "lr"], "differs": True}
    assert params["depth"] == {"key": "depth", "values": ["8", "8"], "differs": False}
    metrics = {m["key"]: m for m in compared["metrics"]}
    assert metrics["loss"]["values"] == [None, pytest.approx(0.3)]
    assert metrics["auc"]["differs"]

    table = cli("runs", "compare", rf, lr)
    assert table.exit_code == 0, table.output
    assert "3 of 4 params and metrics differ" in table.stdout
    only = cli("runs", "compare", rf, lr, "--diff-only")
    assert "depth" not in only.stdout
    assert "model" in only.stdout

    assert cli("runs", "compare", rf).exit_code == 2
    assert cli("runs", "compare", rf, rf).exit_code == 2
    assert cli("runs", "compare", rf, "nope").exit_code == 1


def test_runs_delete_and_restore(cli: Callable[..., Result], two_runs: tuple[str, str]) -> None:
    rf, lr = two_runs
    deleted = cli("runs", "delete", rf)
    assert deleted.exit_code == 0, deleted.output
    assert f"deleted run {rf}" in deleted.stdout
    assert [r["run_id"] for r in _json(cli("runs", "list", "--json"))] == [lr]
    in_bin = _json(cli("runs", "list", "--view", "deleted", "--json"))
    assert [(r["run_id"], r["lifecycle_stage"]) for r in in_bin] == [(rf, "deleted")]
    assert len(_json(cli("runs", "list", "--view", "all", "--json"))) == 2

    assert cli("runs", "restore", rf).exit_code == 0
    assert len(_json(cli("runs", "list", "--json"))) == 2
    unknown = cli("runs", "delete", "feedfacefeedface")
    assert unknown.exit_code == 1
    assert "run feedfacefeedface does not exist" in unknown.stderr


# -- db and gc --------------------------------------------------------------------------
def test_db_upgrade_and_current(cli: Callable[..., Result], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'loopline.db'}"
    before = _json(cli("db", "current", "--backend-uri", url, "--json"))
    assert before == {
        "database": url,
        "current": None,
        "head": HEAD_REVISION,
        "status": "empty",
        "up_to_date": False,
    }
    assert not (tmp_path / "fresh" / "loopline.db").exists()  # looking creates nothing

    upgraded = cli("db", "upgrade", "--backend-uri", url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from (empty) to {HEAD_REVISION}" in upgraded.stdout
    again = cli("db", "upgrade", "--backend-uri", url)
    assert f"already at revision {HEAD_REVISION}" in again.stdout
    assert _json(cli("db", "current", "--backend-uri", url, "--json"))["up_to_date"] is True
    assert f"revision {HEAD_REVISION} (head)" in cli("db", "current", "--backend-uri", url).stdout

    # Without --backend-uri: the store LOOPLINE_HOME names (or the tracking URI's database).
    assert cli("db", "upgrade").exit_code == 0
    assert _json(cli("db", "current", "--json"))["current"] == HEAD_REVISION
    via_global = cli("--tracking-uri", url, "db", "current", "--json")
    assert _json(via_global)["database"] == url


def test_db_upgrade_migrates_a_store_with_the_first_schema(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url, migrate=False)
    old.upgrade("0001")
    old.close()
    before = _json(cli("db", "current", "--backend-uri", url, "--json"))
    assert (before["current"], before["status"]) == (
        "0001",
        "behind" if HEAD_REVISION != "0001" else "current",
    )

    upgraded = cli("db", "upgrade", "--backend-uri", url)
    assert upgraded.exit_code == 0, upgraded.output
    if HEAD_REVISION != "0001":
        assert f"upgraded from 0001 to {HEAD_REVISION}" in upgraded.stdout
    assert _json(cli("db", "current", "--backend-uri", url, "--json"))["status"] == "current"


def test_db_commands_on_a_store_from_a_newer_loopline(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    db = Database(url)
    with db.write() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    db.close()
    assert _json(cli("db", "current", "--backend-uri", url, "--json"))["status"] == "ahead"
    assert "comes from a newer loopline" in cli("db", "current", "--backend-uri", url).stdout
    refused = cli("db", "upgrade", "--backend-uri", url)
    assert refused.exit_code == 1
    assert "error: cannot migrate" in refused.stderr
    assert "hint: a newer loopline created this store" in refused.stderr


def test_db_and_gc_refuse_a_server_uri(cli: Callable[..., Result]) -> None:
    for args in (["db", "current"], ["gc", "--dry-run"]):
        result = cli("--tracking-uri", "http://127.0.0.1:9", *args)
        assert result.exit_code == 1
        assert "names a server" in result.stderr
        assert "hint: " in result.stderr


def test_gc_dry_run_then_collect(
    cli: Callable[..., Result], client: Client, two_runs: tuple[str, str]
) -> None:
    _, lr = two_runs  # the run with an artifact
    assert cli("runs", "delete", lr).exit_code == 0

    dry = _json(cli("gc", "--dry-run", "--grace", "0", "--json"))
    assert dry["dry_run"] is True
    assert dry["runs_purged"] == [lr]
    assert (dry["blobs_deleted"], dry["bytes_freed"]) == (1, len(b"weights"))
    assert client.get_run(lr).info.lifecycle_stage == "deleted"  # still there
    text = cli("gc", "--dry-run")
    assert text.exit_code == 0
    assert "would purge 1 deleted run" in text.stdout
    assert "nothing was changed" in text.stdout

    # Within the default grace period of an hour the fresh blob stays.
    kept = _json(cli("gc", "--json"))
    assert (kept["runs_purged"], kept["blobs_deleted"], kept["blobs_young"]) == ([lr], 0, 1)
    collected = cli("gc", "--grace", "0")
    assert collected.exit_code == 0
    assert "purged 0 deleted runs and deleted 1 blob (7 B)" in collected.stdout
    assert cli("runs", "show", lr).exit_code == 1


# -- server -------------------------------------------------------------------------------
def test_server_command_passes_its_options_to_serve(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("loopline.server.run.serve", lambda **kw: calls.append(kw))
    result = cli(
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "5055",
        "--backend-uri",
        "sqlite:////tmp/x.db",
        "--artifacts-uri",
        "/tmp/blobs",
        "--workers",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "host": "0.0.0.0",
            "port": 5055,
            "backend_uri": "sqlite:////tmp/x.db",
            "artifacts_uri": "/tmp/blobs",
            "workers": 2,
            "log_level": "info",
            "scheduler": False,
        }
    ]
    assert cli("server", "--workers", "0").exit_code == 2


# -- the installed console script -------------------------------------------------------------
def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert LOOPLINE.exists(), f"the console script is not installed at {LOOPLINE}"
    return subprocess.run(
        [str(LOOPLINE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_console_script(two_runs: tuple[str, str]) -> None:
    version = _script("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"loopline {__version__}")

    listed = _script("runs", "list", "--experiment", "churn", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"] for r in json.loads(listed.stdout)} == set(two_runs)

    missing = _script("runs", "show", "0123456789abcdef")
    assert missing.returncode == 1
    assert "error: run 0123456789abcdef does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr

    assert _script("runs", "list", "--bogus").returncode == 2


def test_console_script_against_a_running_server(server_url: str) -> None:
    """``--tracking-uri http://...`` drives a remote server through the HTTP transport."""
    created = _script("--tracking-uri", server_url, "experiments", "create", "remote")
    assert created.returncode == 0, created.stderr
    env = {**os.environ, "LOOPLINE_TRACKING_URI": server_url}
    listed = _script("experiments", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "remote" in {e["name"] for e in json.loads(listed.stdout)}
    runs = _script("runs", "list", "-e", "remote", "--json", env=env)
    assert (runs.returncode, json.loads(runs.stdout or "null")) == (0, [])
    missing = _script("runs", "show", "0123456789abcdef", env=env)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_loopline_server_serves_until_stopped(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(LOOPLINE), "server", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    try:
        url = None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while url is None:
            assert time.monotonic() < deadline, "no URL printed:\n" + "".join(seen)
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, "".join(seen)  # it exited without serving
                continue
            seen.append(line)
            match = re.search(r"http://[\w.\-]+:\d+", line)
            url = match.group(0) if match else None
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200, "".join(seen)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode in (0, -15)


# -- the demo --------------------------------------------------------------------------------
def test_demo_tracks_and_ranks_real_models(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loopline.demo"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "loopline runs list --experiment demo" in done.stdout
    assert "runs compare" in done.stdout
    listed = _script("runs", "list", "--experiment", "demo", "-o", "metrics.auc DESC", "--json")
    runs = json.loads(listed.stdout)
    assert {r["run_name"] for r in runs} == {
        "logreg-C0.05",
        "logreg-C1",
        "random-forest",
        "gradient-boosting",
        "mlp",
    }
    assert all(r["status"] == "FINISHED" and r["metrics"]["auc"] > 0.9 for r in runs)
    best = runs[0]
    assert best["run_id"] in done.stdout
    boosting = next(r for r in runs if r["run_name"] == "gradient-boosting")
    shown = json.loads(_script("runs", "show", boosting["run_id"], "--json").stdout)
    assert {a["path"] for a in shown["artifacts"]} >= {"classification_report.txt"}
    history = Client(settings=Settings.from_env()).get_metric_history(
        boosting["run_id"], "test_auc"
    )
    assert len(history) == 150

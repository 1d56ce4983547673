"""`loopline pipeline` and `loopline scheduler` as users run them, and the REST API the UI reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

FLOWS = Path(__file__).parents[1] / "unit" / "pipelines" / "flows.py"
EXAMPLE = Path(__file__).parents[2] / "examples" / "pipelines" / "linear.py"


def loopline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from loopline.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    """Under --json, stdout is the JSON alone (what steps print goes to stderr)."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_run_show_runs_and_a_cached_rerun() -> None:
    first = as_json(loopline("pipeline", "run", str(EXAMPLE), "--param", "n=2", "--json"))
    assert first["status"] == "succeeded"
    assert len(first["steps"]) == 10
    again = as_json(loopline("pipeline", "run", str(EXAMPLE), "-p", "n=2", "--json"))
    assert set(again["steps"].values()) == {"cached"}
    shown = loopline("pipeline", "show", again["run_id"][:8])
    assert shown.returncode == 0
    assert "cached" in shown.stdout
    assert "add_one_9" in shown.stdout
    listed = as_json(loopline("pipeline", "runs", "--json"))
    assert [r["id"] for r in listed] == [again["run_id"], first["run_id"]]


def test_the_fast_path_and_typer_run_a_pipeline_alike(tmp_path: Path) -> None:
    # `pipeline run` skips typer; a global option before it (or --help) goes through typer.
    url = f"sqlite:///{tmp_path / 'other.db'}"
    fast = loopline("pipeline", "run", f"{FLOWS}:sums", "-p", "n=3")
    assert fast.returncode == 0, fast.stderr
    typer = loopline(
        "--tracking-uri", url, "pipeline", "run", f"{FLOWS}:sums", "-p", "n=3", "--json"
    )
    assert as_json(typer)["status"] == "succeeded"
    assert "summing 3 values" in typer.stderr  # the step's print, kept out of the JSON
    assert set(as_json(typer)["steps"].values()) == {"succeeded"}  # another store: no cache
    assert fast.stdout.splitlines()[-1].startswith("pipeline sums: succeeded (run ")
    helped = loopline("pipeline", "run", "--help")
    assert helped.returncode == 0
    assert "--no-cache" in helped.stdout
    bad = loopline("pipeline", "run", f"{FLOWS}:sums", "--bogus")
    assert bad.returncode == 2  # typer's usage error


def test_exit_codes_failed_step_gate_and_bad_input(tmp_path: Path) -> None:
    failed = loopline("pipeline", "run", f"{FLOWS}:branches", env={"FLOWS_FAIL": "1"})
    assert failed.returncode == 1
    assert "step 'fragile' failed" in failed.stderr
    assert "Traceback" not in failed.stderr
    run_id = failed.stderr.split("(run ")[1].split(")")[0]
    resumed = loopline("pipeline", "resume", run_id, "--json", env={"FLOWS_FAIL": "0"})
    assert as_json(resumed)["steps"]["total"] == "cached"
    missing = loopline("pipeline", "run", f"{FLOWS}:retrying")
    assert missing.returncode == 1
    assert "needs parameter 'marker'" in missing.stderr
    unknown = loopline("pipeline", "run", f"{FLOWS}:nope")
    assert unknown.returncode == 1
    assert "has no pipeline 'nope'" in unknown.stderr


@pytest.fixture
def cancer(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    path = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    assert loopline("data", "add", str(path), "--name", "cancer").returncode == 0


@pytest.mark.slow
@pytest.mark.usefixtures("cancer")
def test_a_failed_gate_exits_3_with_its_report_and_thresholds_come_from_the_cli() -> None:
    target = f"{FLOWS}:train_and_gate"
    gate = loopline(
        "pipeline", "run", target, "--executor", "inline", "--threshold", "auc=>= 0.99999"
    )
    assert gate.returncode == 3, gate.stderr
    assert "FAIL  auc on cancer@1" in gate.stderr
    passed = loopline("pipeline", "run", target, "--executor", "inline", "-t", "auc=>= 0.5")
    assert passed.returncode == 0, passed.stderr


def test_new_data_triggers_a_run_through_the_scheduler(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    assert loopline("data", "add", str(table), "--name", "table").returncode == 0
    scheduled = loopline(
        "pipeline",
        "schedule",
        f"{FLOWS}:count_rows",
        "--on-new-data",
        "table",
        "--executor",
        "inline",
        "--json",
    )
    trigger = as_json(scheduled)["id"]
    idle = loopline("scheduler", "--once")
    assert idle.returncode == 0
    assert "0 fired" in idle.stdout
    table.write_text("a,b\n1,2\n3,4\n")
    assert loopline("data", "add", str(table), "--name", "table").returncode == 0
    fired = loopline("scheduler", "--once")
    assert "1 fired, 1 started" in fired.stdout, fired.stderr
    firings = as_json(loopline("pipeline", "firings", "--json"))
    assert [(f["trigger_id"], f["status"], f["params"]) for f in firings] == [
        (trigger, "succeeded", {"dataset": "table@2"})
    ]
    run = as_json(loopline("pipeline", "show", firings[0]["pipeline_run_id"], "--json"))
    assert run["params"]["dataset"] == "table@2"
    assert run["firing_id"] == firings[0]["id"]
    assert [s["outputs"]["output"]["kind"] for s in run["steps"]] == ["json"]


def test_the_rest_api_lists_runs_steps_and_logs(start_server: Any) -> None:
    server = start_server()
    env = {"LOOPLINE_HOME": str(Path(server.log).parent)}
    done = as_json(loopline("pipeline", "run", f"{FLOWS}:sums", "--json", env=env))
    base = f"{server.url}/api/v1/pipelines"
    runs = httpx.get(f"{base}/runs").json()["runs"]
    assert [r["id"] for r in runs] == [done["run_id"]]
    one = httpx.get(f"{base}/runs/{done['run_id']}").json()
    assert [(s["name"], s["status"]) for s in one["steps"]] == [
        ("numbers", "succeeded"),
        ("scaled", "succeeded"),
        ("total", "succeeded"),
    ]
    assert all(s["duration_ms"] is not None for s in one["steps"])
    logs = httpx.get(f"{base}/runs/{done['run_id']}/steps/total/logs")
    assert logs.status_code == 200
    assert "summing 5 values" in logs.text
    assert httpx.get(f"{base}/runs/nope").status_code == 404
    assert httpx.get(f"{base}/triggers").json() == {"triggers": []}

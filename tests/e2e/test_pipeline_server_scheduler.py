"""`loopline server --scheduler`: triggers fire from inside a running server.

The server runs two workers over one store; only one of them runs a scheduler,
and the lease would keep a second one idle anyway: each new version fires once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FLOWS = Path(__file__).parents[1] / "unit" / "pipelines" / "flows.py"


def loopline(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOOPLINE_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-c", "from loopline.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env={**env, "LOOPLINE_HOME": str(home)},
        timeout=120,
        check=False,
    )


def _firings(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{url}/api/v1/pipelines/firings").json()["firings"]
    return found


def test_a_new_dataset_version_fires_a_trigger_through_the_running_server(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server(scheduler=True, workers=2)
    home = Path(server.log).parent
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    assert loopline(home, "data", "add", str(table), "--name", "table").returncode == 0
    scheduled = loopline(
        home,
        "pipeline",
        "schedule",
        f"{FLOWS}:count_rows",
        "--on-new-data",
        "table",
        "--executor",
        "inline",
    )
    assert scheduled.returncode == 0, scheduled.stderr
    table.write_text("a,b\n1,2\n3,4\n5,6\n")
    assert loopline(home, "data", "add", str(table), "--name", "table").returncode == 0

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        firings = _firings(server.url)
        if firings and firings[0]["status"] not in ("pending", "running"):
            break
        time.sleep(0.5)
    assert [(f["status"], f["params"]) for f in firings] == [
        ("succeeded", {"dataset": "table@2"})
    ], server.log.read_text()
    run = httpx.get(f"{server.url}/api/v1/pipelines/runs/{firings[0]['pipeline_run_id']}").json()
    assert run["firing_id"] == firings[0]["id"]
    assert [(s["name"], s["status"]) for s in run["steps"]] == [("rows", "succeeded")]
    time.sleep(2.5)  # another tick of the scheduler (every 2 s) fires nothing new
    assert len(_firings(server.url)) == 1


def test_the_command_line_offers_the_flag(tmp_path: Path) -> None:
    helped = loopline(tmp_path, "server", "--help")
    assert helped.returncode == 0
    assert "--scheduler" in helped.stdout

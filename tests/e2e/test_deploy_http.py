"""``loopline deploy`` through a real ``loopline server`` (an http:// tracking URI)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner

from loopline.cli.main import app
from loopline.config import reset_settings

from .test_serve import register

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest


def test_deploy_commands_through_the_server(
    start_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopline

    home = tmp_path / "server-0"  # the home start_server gives its first server
    monkeypatch.setenv("LOOPLINE_HOME", str(home))
    reset_settings()
    for c in (1.0, 0.1, 0.01):
        register("churn", C=c)
    loopline.registry.set_alias("churn", "champion", 1)
    server = start_server()
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LOOPLINE_")}
    env |= {
        "LOOPLINE_TRACKING_URI": server.url,
        "LOOPLINE_HOME": str(tmp_path / "client-home"),  # nothing local is touched
        "LOOPLINE_USER": "grace",
    }

    runner = CliRunner()

    def deploy(*args: str, ok: bool = True) -> Any:
        # In process (the CLI's code, not a fresh interpreter per command): the server is real.
        done = runner.invoke(app, ["deploy", *args], env=env, prog_name="loopline")
        assert (done.exit_code == 0) == ok, done.output
        return json.loads(done.stdout) if ok and "--json" in args else done

    created = deploy("create", "churn-prod", "--model", "models:/churn@champion", "--json")
    assert (created["current_version"], created["created_by"]) == (1, "grace")
    canary = deploy(
        "canary", "churn-prod", "--model", "models:/churn/2", "--percent", "20",
        "--promote-after-requests", "25", "--json",
    )  # fmt: skip
    assert canary["limits"]["promote_after_requests"] == 25
    assert canary["limits"]["min_requests"] == 20
    shadow = deploy("shadow", "churn-prod", "--model", "models:/churn/3", "--json")
    assert shadow["shadow"] == {"model": "churn", "version": 3}
    limits = deploy("limits", "churn-prod", "--max-p99-ms", "150", "--json")
    assert limits["limits"]["max_p99_ms"] == 150
    assert deploy("promote", "churn-prod", "--json")["current_version"] == 2
    assert deploy("rollback", "churn-prod", "--reason", "numbers", "--json")["current_version"] == 1
    assert deploy("shadow", "churn-prod", "--remove", "--json")["shadow"] is None
    status = deploy("status", "churn-prod", "--json")
    assert [h["action"] for h in status["history"]] == [
        "created",
        "canary_started",
        "shadow_set",
        "limits_changed",
        "promoted",
        "rolled_back",
        "shadow_removed",
    ]
    assert {h["actor"] for h in status["history"]} == {"grace"}
    assert [d["name"] for d in deploy("list", "--json")] == ["churn-prod"]
    table = deploy("list")
    assert "churn-prod" in table.stdout
    assert "models:/churn@champion" in table.stdout

    # The server's store changed, and its errors come back as the CLI's.
    assert not (tmp_path / "client-home").exists()
    assert loopline.registry.resolve("models:/churn@champion").version == 1
    missing = deploy("promote", "nope", ok=False)
    assert missing.exit_code == 1
    assert "deployment 'nope' does not exist" in missing.stderr
    taken = deploy("create", "churn-prod", "--model", "models:/churn/1", ok=False)
    assert "already exists" in taken.stderr
    bad = deploy("canary", "churn-prod", "--model", "models:/churn/2", "--percent", "0", ok=False)
    assert "between 0 and 100" in bad.stderr
    rule = deploy("limits", "churn-prod", "--promote-after", "30", "--json")["limits"]
    assert (rule["promote_after_requests"], rule["promote_after_seconds"]) == (25, 30)
    shown = deploy("status", "churn-prod").stdout
    assert "promotion  automatic, after 25 requests and 30 s within the limits" in shown
    early = deploy("limits", "churn-prod", "--promote-after-requests", "5", ok=False)
    assert "promote_after_requests (5) is below min_requests (20)" in early.stderr
    negative = deploy("limits", "churn-prod", "--promote-after", "-1", ok=False)
    assert "limit promote_after_seconds must be a number at least 0, got -1.0" in negative.stderr
    refused = deploy(
        "canary", "churn-prod", "--model", "models:/churn/3", "--promote-after-requests", "2",
        ok=False,
    )  # fmt: skip
    assert "below min_requests" in refused.stderr
    after = deploy("status", "churn-prod", "--json")
    assert after["canary"] is None  # the refused canary did not start
    assert after["revision"] == status["revision"] + 1  # only the accepted --promote-after
    serve = deploy("serve", "churn-prod", ok=False)
    assert "database URL" in serve.stderr

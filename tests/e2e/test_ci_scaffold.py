"""`loopline init` makes a project whose pipeline, tests and CI workflows work.

The workflow files cannot run here: they are validated against the published
schemas that check-jsonschema ships, and their steps' commands run locally in order
(pull request, then merge to main), against a local stand-in for GitHub's API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from e2e.test_ci_comment import TOKEN, forge  # noqa: F401 - the fixture

LOOPLINE = [sys.executable, "-m", "loopline.cli.main"]


def _schema(name: str) -> dict[str, Any]:
    vendor = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    return json.loads((vendor / name).read_text(encoding="utf-8"))


def _run(cmd: list[str] | str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        shell=isinstance(cmd, str),
        executable="/bin/bash" if isinstance(cmd, str) else None,
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {**os.environ, "LOOPLINE_HOME": str(tmp_path / "store")}
    env.pop("LOOPLINE_TRACKING_URI", None)
    # `loopline` on PATH, as the workflows call it.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = _run([*LOOPLINE, "init", str(tmp_path / "churn")], tmp_path, env)
    assert result.returncode == 0, result.stderr
    return tmp_path / "churn", env


def test_workflows_match_the_published_schemas(project: tuple[Path, dict[str, str]]) -> None:
    root, _ = project
    github = yaml.safe_load((root / ".github/workflows/loopline.yml").read_text())
    # PyYAML reads the key `on` as YAML 1.1's boolean true; GitHub (YAML 1.2) does not.
    github["on"] = github.pop(True)
    jsonschema.validate(github, _schema("github-workflows.json"))
    gitlab = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    jsonschema.validate(gitlab, _schema("gitlab-ci.json"))
    # And a broken one is caught: the check can fail.
    del github["jobs"]["test"]["runs-on"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(github, _schema("github-workflows.json"))


def test_init_refuses_to_overwrite(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    result = _run([*LOOPLINE, "init", str(root)], root, env)
    assert result.returncode == 1
    assert "--force" in result.stderr


def _github_commands(workflow: dict[str, Any], job: str, values: dict[str, str]) -> list[str]:
    commands = []
    for step in workflow["jobs"][job]["steps"]:
        command = step.get("run")
        if command is None or "pip install" in command:
            continue  # actions and installs need GitHub's runners and PyPI

        def expand(match: re.Match[str]) -> str:
            return values.get(match[1].strip(), "")

        commands.append(re.sub(r"\$\{\{(.*?)\}\}", expand, command))
    return commands


def test_the_scaffold_runs_its_own_ci_locally(
    project: tuple[Path, dict[str, str]],
    forge: Any,  # noqa: F811
) -> None:
    root, env = project
    # Right after init: the pipeline versions the bundled data, trains, gates, registers.
    first = _run(
        [*LOOPLINE, "pipeline", "run", "pipeline.py", "--config", "loopline.toml"], root, env
    )
    assert first.returncode == 0, first.stdout + first.stderr
    for dataset in ("churn-train", "churn-holdout"):
        tagged = _run([*LOOPLINE, "data", "tag", f"{dataset}@latest", "pinned"], root, env)
        assert tagged.returncode == 0, tagged.stderr

    workflow = yaml.safe_load((root / ".github/workflows/loopline.yml").read_text())
    values = {"github.repository": "acme/churn", "github.event.pull_request.number": "7"}
    ci_env = {**env, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": forge.url}
    for job in ("test", "pull-request", "promote"):
        for command in _github_commands(workflow, job, values):
            done = _run(command, root, ci_env)
            assert done.returncode == 0, f"{job}: {command}\n{done.stdout}\n{done.stderr}"

    report = (root / "loopline-report" / "report.md").read_text()
    assert "churn@2" in report  # the pull request's model, registered as the challenger
    assert "compared with champion **churn@1**" in report
    assert (root / "loopline-report" / "metrics.png").stat().st_size > 0
    assert (root / "loopline-report" / "evaluation.png").stat().st_size > 0  # confusion matrix
    posted = [c for c in forge.calls if c[0] == "POST"]
    assert len(posted) == 1
    assert posted[0][1] == "/repos/acme/churn/issues/7/comments"
    assert posted[0][3]["body"].startswith("<!-- loopline-report -->")

    status = _run([*LOOPLINE, "models", "show", "churn"], root, env)
    assert status.returncode == 0, status.stderr
    champion = _run(
        [
            sys.executable,
            "-c",
            "import loopline.registry as r; print(r.resolve('churn@champion').version)",
        ],
        root,
        env,
    )
    assert champion.stdout.strip() == "2", champion.stderr  # merged: canary, then promoted


def test_report_without_a_champion_says_so_and_renders(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    run = _run(
        [
            *LOOPLINE,
            "pipeline",
            "run",
            "pipeline.py",
            "--config",
            "loopline.toml",
            "-p",
            "promote_to=challenger",
            "-x",
            "inline",
        ],
        root,
        env,
    )
    assert run.returncode == 0, run.stderr
    result = _run([*LOOPLINE, "ci", "report", "--format", "json", "--out", "out"], root, env)
    assert result.returncode == 0, result.stderr
    data = json.loads((root / "out" / "report.json").read_text())
    assert data["verdict"] == "passed"
    assert data["champion"] is None
    assert any("has no champion yet" in note for note in data["notes"])
    html = _run([*LOOPLINE, "ci", "report", "--format", "html", "--out", "out"], root, env)
    assert html.returncode == 0
    assert "<table>" in (root / "out" / "report.html").read_text()


def test_a_failed_gate_exits_3_and_the_report_shows_it(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    run = _run(
        [*LOOPLINE, "pipeline", "run", "pipeline.py", "-x", "inline", "-t", "auc=>= 0.9999"],
        root,
        env,
    )
    assert run.returncode == 3, run.stdout + run.stderr
    result = _run([*LOOPLINE, "ci", "report"], root, env)
    assert result.returncode == 3
    report = (root / "loopline-report" / "report.md").read_text()
    assert "**FAIL**" in report
    assert "0.9999" in report


def test_report_on_a_machine_without_a_store_names_the_fix(tmp_path: Path) -> None:
    env = {**os.environ, "LOOPLINE_HOME": str(tmp_path / "nothing")}
    env.pop("LOOPLINE_TRACKING_URI", None)
    result = _run([*LOOPLINE, "ci", "report"], tmp_path, env)
    assert result.returncode == 1
    assert "LOOPLINE_TRACKING_URI" in result.stderr


def test_a_missing_dataset_version_and_an_unknown_metric_name_the_fix(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    base = [*LOOPLINE, "pipeline", "run", "pipeline.py", "-x", "inline"]
    missing = _run([*base, "-p", "train_ref=churn-train@pinned"], root, env)
    assert missing.returncode == 1
    assert "churn-train" in missing.stderr
    assert "hint:" in missing.stderr
    unknown = _run([*base, "-t", "recall_at_k=>= 0.5"], root, env)
    assert unknown.returncode != 0
    assert "unknown metric 'recall_at_k'" in unknown.stderr
    assert "auc, accuracy" in unknown.stderr  # the hint lists what exists

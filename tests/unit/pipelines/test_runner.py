"""Running pipelines for real: child runs, caching, failures, retries, timeouts, resume, gates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

import loopline
from loopline.config import get_settings
from loopline.pipelines import ApprovalRequiredError, GateFailedError, PipelineFailedError
from loopline.pipelines.store import PipelineStore
from loopline.store.metadata import Database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType


@pytest.fixture
def store() -> Iterator[PipelineStore]:
    db = Database(get_settings().metadata_url)
    yield PipelineStore(db)
    db.close()


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_run_is_a_tracked_run_with_a_child_run_per_step(
    flows: ModuleType, store: PipelineStore, executor: str
) -> None:
    run = flows.sums.run(params={"n": 4}, executor=executor)
    assert run.status == "succeeded"
    assert run.load("total") == 2 * (0 + 1 + 2 + 3)
    record = store.get_run(run.run_id)
    assert [s.name for s in record.steps] == ["numbers", "scaled", "total"]
    client = loopline.Client()
    parent = client.get_run(run.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["loopline.runType"] == "pipeline"
    total = next(s for s in record.steps if s.name == "total")
    child = client.get_run(total.child_run_id or "")
    assert child.info.parent_run_id == run.run_id
    assert child.data.metrics["count"] == 4  # logged from inside the step
    assert "summing 4 values" in total.logs
    assert {a.path for a in client.list_artifacts(child.info.run_id, "outputs")} == {
        "outputs/output.json"
    }


def test_a_second_run_reuses_cached_outputs_until_code_or_params_change(
    flows: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = flows.sums.run(params={"n": 5}, executor="inline")
    assert set(first.steps.values()) == {"succeeded"}
    started = time.perf_counter()
    again = flows.sums.run(params={"n": 5}, executor="inline")
    assert set(again.steps.values()) == {"cached"}
    assert time.perf_counter() - started < 5  # generous: the benchmark holds the real goal
    assert again.load("total") == first.load("total")
    changed = flows.sums.run(params={"n": 6}, executor="inline")
    assert changed.steps == {"numbers": "succeeded", "scaled": "succeeded", "total": "succeeded"}
    no_cache = flows.sums.run(params={"n": 5}, executor="inline", cache=False)
    assert set(no_cache.steps.values()) == {"succeeded"}


def test_a_failing_step_fails_the_run_and_independent_branches_finish(
    flows: ModuleType, store: PipelineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWS_FAIL", "1")
    with pytest.raises(
        PipelineFailedError, match="step 'fragile' failed: fragile failed on purpose"
    ):
        flows.branches.run(executor="local")
    record = store.list_runs(pipeline="branches")[0]
    states = {s.name: s.status for s in record.steps}
    assert states == {"numbers": "succeeded", "total": "succeeded", "fragile": "failed"}
    fragile = next(s for s in record.steps if s.name == "fragile")
    assert "flows.py" in fragile.traceback
    assert "ValueError" in fragile.traceback
    assert loopline.Client().get_run(record.id).info.status == "FAILED"

    monkeypatch.setenv("FLOWS_FAIL", "0")
    from loopline.pipelines.runner import Runner

    resumed = Runner(flows.branches, executor="inline", resume=record, cache=False).run()
    assert resumed.steps == {"numbers": "cached", "total": "cached", "fragile": "succeeded"}


def test_retries_with_backoff_then_success(
    flows: ModuleType, tmp_path: Path, store: PipelineStore
) -> None:
    run = flows.retrying.run(params={"marker": str(tmp_path / "count")}, executor="local")
    assert run.status == "succeeded"
    step = next(s for s in store.get_run(run.run_id).steps if s.name == "flaky")
    assert step.attempts == 3


def test_a_step_over_its_timeout_fails(flows: ModuleType) -> None:
    started = time.perf_counter()
    with pytest.raises(PipelineFailedError, match=r"timeout of 0\.5 s"):
        flows.timing_out.run(executor="local")
    assert time.perf_counter() - started < 4


def test_a_killed_pipeline_process_leaves_a_run_the_next_start_marks_failed(
    store: PipelineStore, tmp_path: Path
) -> None:
    script = tmp_path / "slow.py"
    script.write_text(
        "import time, loopline\n\n"
        "@loopline.step\ndef wait(n: int) -> int:\n    time.sleep(60)\n    return n\n\n"
        "@loopline.pipeline\ndef slow(n: int = 1) -> None:\n    wait(n)\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from loopline.cli.main import main; main()",
            "pipeline",
            "run",
            str(script),
            "--executor",
            "inline",
        ],
        env=os.environ.copy(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not store.list_runs(pipeline="slow"):
        time.sleep(0.1)
    assert store.list_runs(pipeline="slow")[0].status == "running"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.fail_dead_runs()
    record = store.list_runs(pipeline="slow")[0]
    assert record.status == "failed"
    assert "ended without finishing" in record.error
    assert loopline.Client().get_run(record.id).info.status == "FAILED"


def test_model_gate_registers_promotes_and_stops_below_threshold(
    flows: ModuleType, cancer: str, store: PipelineStore
) -> None:
    run = flows.train_and_gate.run(params={"dataset": "cancer@latest"}, executor="inline")
    assert run.status == "succeeded"
    assert loopline.registry.resolve("cancer-clf@champion").version == 1
    record = store.get_run(run.run_id)
    split = next(s for s in record.steps if s.name == "split")
    assert split.inputs["datasets"] == {"dataset": "cancer@1"}  # pinned, not "latest"
    lineage = loopline.registry.lineage("cancer-clf@1")
    assert run.run_id in lineage.pipeline_runs

    with pytest.raises(GateFailedError, match="auc on cancer@1") as failed:
        flows.train_and_gate.run(params={"min_auc": ">= 0.9999"}, executor="inline")
    assert failed.value.report
    assert failed.value.report[0]["passed"] is False
    assert loopline.registry.resolve("cancer-clf@champion").version == 1


@pytest.mark.slow
def test_an_override_threshold_and_the_champion_comparison(flows: ModuleType, cancer: str) -> None:
    flows.train_and_gate.run(executor="inline")
    # Not better than the champion by min_improvement 0 fails? Equal passes (gain 0 >= 0).
    again = flows.train_and_gate.run(executor="inline", thresholds={"auc": ">= 0.5"})
    assert again.status == "succeeded"
    assert loopline.registry.resolve("cancer-clf@champion").version == 2


def test_promotion_waits_for_approval_where_the_registry_requires_it(
    flows: ModuleType, cancer: str, store: PipelineStore
) -> None:
    loopline.registry.create_registered_model("cancer-clf", require_approval=True)
    with pytest.raises(ApprovalRequiredError, match="loopline models approve cancer-clf@1"):
        flows.train_and_gate.run(executor="inline")
    record = store.list_runs(pipeline="train_and_gate")[0]
    assert record.status == "waiting_approval"
    assert {s.name: s.status for s in record.steps}["validate_model"] == "blocked"

    from loopline.pipelines.runner import Runner

    loopline.registry.approve("cancer-clf", 1, "looks good")
    resumed = Runner(flows.train_and_gate, executor="inline", resume=record).run()
    assert resumed.status == "succeeded"
    assert resumed.steps["fit"] == "cached"
    # The approved version moves, rather than the same model registered again.
    assert loopline.registry.resolve("cancer-clf@champion").version == 1
    assert [v.version for v in loopline.registry.list_versions("cancer-clf")] == [1]


def test_a_blocked_promotion_names_the_maintainers_who_may_approve(
    flows: ModuleType, cancer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopline.auth.roles import Role
    from loopline.auth.store import AuthStore
    from loopline.config import reset_settings

    db = Database(get_settings().metadata_url)
    auth = AuthStore(db)
    for name in ("ana", "bo", "cy", "dee"):
        auth.create_user(name, None)
    auth.create_user("root", None, is_admin=True)
    auth.set_member("default", "ana", Role.MAINTAINER, actor="root")
    auth.set_member("default", "cy", Role.MAINTAINER, actor="root")
    auth.set_member("default", "dee", Role.EDITOR, actor="root")
    auth.set_four_eyes("default", True, actor="root")
    db.close()
    monkeypatch.setenv("LOOPLINE_USER", "cy")  # the run registers the version as cy
    reset_settings()
    loopline.registry.create_registered_model("cancer-clf", require_approval=True)
    with pytest.raises(ApprovalRequiredError) as blocked:
        flows.train_and_gate.run(executor="inline")
    message = blocked.value.message
    assert "a maintainer of project 'default' must approve it: ana or root" in message
    assert "(four-eyes: not cy, its author)" in message
    assert "loopline models approve cancer-clf@1" in message


def test_data_gate_checks_the_recorded_schema_and_profile(cancer: str) -> None:
    from loopline.pipelines import check_data

    report = check_data(cancer, columns=["target"], min_rows=500, max_missing=0.0)
    assert all(r["passed"] for r in report)
    with pytest.raises(GateFailedError) as failed:
        check_data(
            cancer, min_rows=1000, ranges={"mean radius": (0, 10)}, types={"target": "string"}
        )
    checks = {r["check"]: r["passed"] for r in failed.value.report}
    assert checks == {"rows": False, "type of target": False, "range of mean radius": False}


def test_data_gate_checks_every_tabular_file_and_names_it(tmp_path: Path) -> None:
    from loopline.errors import InvalidArgumentError
    from loopline.pipelines import check_data

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (folder / "b.csv").write_text("x,y\n5,6\n70,8\n")
    (folder / "notes.txt").write_text("not a table\n")
    ref = str(loopline.data.add(folder, name="parts").ref)
    with pytest.raises(GateFailedError) as failed:
        check_data(ref, columns=["x"], ranges={"x": (0, 10)})
    checks = {r["check"]: r["passed"] for r in failed.value.report}
    assert checks == {
        "a.csv: column x": True,
        "a.csv: range of x": True,
        "b.csv: column x": True,
        "b.csv: range of x": False,
    }
    assert "b.csv: range of x" in failed.value.message
    report = check_data(ref, file="a.csv", ranges={"x": (0, 10)})
    assert [r["check"] for r in report] == ["range of x"]
    with pytest.raises(InvalidArgumentError, match=r"tabular files: a\.csv, b\.csv"):
        check_data(ref, file="notes.txt")


def objective(params: dict[str, float]) -> float:
    loopline.log_metric("x_seen", params["x"])
    return -((params["x"] - 1.0) ** 2)


def test_sweep_runs_trials_as_child_runs_in_parallel() -> None:
    found = loopline.sweep(objective, {"x": (-3.0, 3.0)}, n_trials=12, executor="local", seed=0)
    assert len(found.trials) == 12
    assert found.best_value <= 0
    client = loopline.Client()
    best = client.get_run(found.best_run_id)
    assert best.info.parent_run_id == found.run_id
    assert best.data.metrics["x_seen"] == pytest.approx(found.best_params["x"])
    assert client.get_run(found.run_id).data.params["best.x"] == str(found.best_params["x"])

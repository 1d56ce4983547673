"""The Ray executor against a real local Ray instance (2 CPUs, no dashboard).

One Ray instance serves the module's tests: starting it takes seconds.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

import loopline
from loopline.config import get_settings
from loopline.errors import InvalidArgumentError
from loopline.pipelines.store import PipelineStore
from loopline.store.metadata import Database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_pipeline_runs_as_ray_tasks_with_the_steps_resources(
    local_ray: None, flows: ModuleType
) -> None:
    run = flows.on_ray.run(params={"n": 4}, executor="ray")
    assert run.status == "succeeded"
    assert run.load("total") == 0 + 1 + 2 + 3
    given = run.load("assigned")
    assert given["CPU"] == 2.0  # resources={"cpu": 2} reached Ray
    assert given["memory"] == pytest.approx(100e6)
    db = Database(get_settings().metadata_url)
    try:
        record = PipelineStore(db).get_run(run.run_id)
    finally:
        db.close()
    assert record.executor == "ray"
    total = next(s for s in record.steps if s.name == "total")
    child = loopline.Client().get_run(total.child_run_id or "")
    assert child.data.metrics["count"] == 4  # logged from inside a Ray worker
    assert child.info.status == "FINISHED"
    again = flows.on_ray.run(params={"n": 4}, executor="ray")
    assert set(again.steps.values()) == {"cached"}


def test_a_step_asking_more_than_the_cluster_has_is_refused_before_it_runs(
    local_ray: None, flows: ModuleType
) -> None:
    with pytest.raises(InvalidArgumentError, match="asks for CPU 64; the Ray cluster has 2"):
        flows.too_big.run(executor="ray")


def objective(params: dict[str, float]) -> float:
    loopline.log_metric("pid", os.getpid())
    return -((params["x"] - 1.0) ** 2)


def test_a_sweep_runs_its_trials_on_ray(local_ray: None) -> None:
    found = loopline.sweep(objective, {"x": (-3.0, 3.0)}, n_trials=10, executor="ray", seed=0)
    assert len(found.trials) == 10
    assert all(t["value"] is not None for t in found.trials)
    client = loopline.Client()
    pids = {int(client.get_run(t["run_id"]).data.metrics["pid"]) for t in found.trials}
    assert os.getpid() not in pids  # the trials ran in Ray's workers
    assert client.get_run(found.best_run_id).info.parent_run_id == found.run_id

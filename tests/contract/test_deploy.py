"""Deployments' contract on SQLite and PostgreSQL: routing state, rollouts, history, events.

Through :class:`~loopline.serving.deployments.DeploymentService` over a registry whose
versions are real (registered from runs' model folders in the same store).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.events import read_events
from loopline.registry.service import RegistryService
from loopline.serving.deployments import DeploymentService
from loopline.store.blobs.local import LocalBlobStore
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.service import TrackingService
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.store.metadata import Database

MODEL_YAML = (
    "flavor: sklearn\n"
    "signature:\n  inputs: [{name: x, dtype: float64}]\n  outputs: [{name: y, dtype: int64}]\n"
)


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> Iterator[RegistryService]:
    """Versions 1-3 of ``churn`` and version 1 of ``other``; ``churn@champion`` -> 1."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    tracking = TrackingService(db, blobs, user="ada")
    reg = RegistryService(db, blobs, user="ada")
    for name, count in (("churn", 3), ("other", 1)):
        for i in range(count):
            run_id = uuid.uuid4().hex
            tracking.write(
                RunWrites(
                    batch_id=uuid.uuid4().hex,
                    new_runs=[NewRun(run_id, "0", "train", now_ms(), "ada")],
                )
            )
            tracking.put_artifact(run_id, "model/loopline-model.yaml", MODEL_YAML.encode())
            tracking.put_artifact(run_id, "model/weights.bin", f"{name}-{i}".encode())
            reg.register_model(f"runs:/{run_id}/model", name)
    reg.set_alias("churn", "champion", 1)
    yield reg
    blobs.close()


@pytest.fixture
def deployments(db: Database, registry: RegistryService) -> DeploymentService:
    return DeploymentService(db, registry, actor="ada")


def _actions(service: DeploymentService, name: str) -> list[str]:
    return [h.action for h in service.history(name)]


def test_create_follows_an_alias_or_pins_a_version(deployments: DeploymentService) -> None:
    followed = deployments.create("churn-prod", "models:/churn@champion", limits={"max_p99_ms": 80})
    assert (followed.model, followed.alias, followed.version) == ("churn", "champion", None)
    assert followed.current_version == 1
    assert followed.limits == {"max_p99_ms": 80}
    assert followed.created_by == "ada"
    assert followed.revision == 1
    pinned = deployments.create("churn-pinned", "models:/churn/2")
    assert (pinned.alias, pinned.version, pinned.current_version) == (None, 2, 2)
    assert pinned.model_uri == "models:/churn/2"
    assert [d.name for d in deployments.list()] == ["churn-pinned", "churn-prod"]
    deployments.registry.set_alias("churn", "champion", 3)
    assert deployments.get("churn-prod").current_version == 3  # reads follow the alias


@pytest.mark.parametrize(
    ("name", "uri", "error"),
    [
        ("churn-prod", "models:/churn@nope", NotFoundError),
        ("churn-prod", "models:/ghost/1", NotFoundError),
        ("churn-prod", "runs:/abc/model", InvalidArgumentError),
        ("../etc", "models:/churn/1", InvalidArgumentError),
        ("123", "models:/churn/1", InvalidArgumentError),
    ],
)
def test_create_refuses_what_cannot_be_deployed(
    deployments: DeploymentService, name: str, uri: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        deployments.create(name, uri)
    assert deployments.list() == []


def test_a_name_is_taken_once_and_limits_are_checked(deployments: DeploymentService) -> None:
    deployments.create("churn-prod", "models:/churn@champion")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        deployments.create("churn-prod", "models:/churn/2")
    with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
        deployments.create("other-prod", "models:/churn/1", limits={"max_error_rate": 2})
    with pytest.raises(InvalidArgumentError, match="unknown limit"):
        deployments.set_limits("churn-prod", {"max_p50_ms": 3})
    changed = deployments.set_limits("churn-prod", {"max_p99_ms": 120, "min_requests": 50})
    assert changed.limits == {"max_p99_ms": 120, "min_requests": 50}
    assert deployments.set_limits("churn-prod", {"window_seconds": 30}).limits == {
        "max_p99_ms": 120,
        "min_requests": 50,
        "window_seconds": 30,
    }
    with pytest.raises(NotFoundError, match="loopline deploy list"):
        deployments.get("nope")


def test_canary_promote_then_rollback_restores_the_alias(deployments: DeploymentService) -> None:
    reg = deployments.registry
    deployments.create("churn-prod", "models:/churn@champion")
    with pytest.raises(InvalidStateError, match="no canary"):
        deployments.promote("churn-prod")
    with pytest.raises(InvalidArgumentError, match="between 0 and 100"):
        deployments.set_canary("churn-prod", "models:/churn/2", 0)
    canary = deployments.set_canary("churn-prod", "models:/churn/2", 10)
    assert canary.canary == {"model": "churn", "version": 2, "percent": 10}
    shadowed = deployments.set_shadow("churn-prod", "models:/churn/3")
    assert shadowed.shadow == {"model": "churn", "version": 3}
    promoted = deployments.promote("churn-prod")
    assert promoted.canary is None
    assert promoted.current_version == 2
    assert reg.resolve("models:/churn@champion").version == 2
    back = deployments.rollback("churn-prod", reason="bad numbers")
    assert back.current_version == 1
    assert reg.resolve("models:/churn@champion").version == 1
    assert _actions(deployments, "churn-prod") == [
        "created",
        "canary_started",
        "shadow_set",
        "promoted",
        "rolled_back",
    ]
    last = deployments.history("churn-prod")[-1]
    assert (last.reason, last.actor, last.revision) == ("bad numbers", "ada", 5)
    assert last.state["shadow"] == {"model": "churn", "version": 3}
    assert deployments.set_shadow("churn-prod", None).shadow is None


def test_rollback_drops_a_canary_first_and_automatic_ones_once(
    deployments: DeploymentService,
) -> None:
    deployments.create("churn-prod", "models:/churn@champion")
    deployments.set_canary("churn-prod", "models:/churn/3", 50)
    dropped = deployments.rollback("churn-prod", reason="automatic rollback: p99", automatic=True)
    assert dropped.canary is None
    # A second server noticing the same breach changes nothing.
    again = deployments.rollback("churn-prod", reason="automatic rollback: p99", automatic=True)
    assert again.revision == dropped.revision
    assert deployments.registry.resolve("models:/churn@champion").version == 1
    assert _actions(deployments, "churn-prod") == [
        "created",
        "canary_started",
        "canary_rolled_back",
    ]


def test_what_cannot_roll_back_or_promote_says_why(deployments: DeploymentService) -> None:
    deployments.create("pinned", "models:/churn/1")
    with pytest.raises(InvalidStateError, match="nothing to roll back"):
        deployments.rollback("pinned")
    deployments.create("fresh", "models:/churn@champion")
    with pytest.raises(InvalidStateError, match="no earlier version"):
        deployments.rollback("fresh")
    deployments.set_canary("fresh", "models:/other/1", 10)
    with pytest.raises(InvalidStateError, match="across models"):
        deployments.promote("fresh")
    promoted = deployments.set_canary("pinned", "models:/churn/2", 10)
    assert promoted.canary is not None
    assert deployments.promote("pinned").version == 2  # a pinned deployment re-pins


def test_every_change_is_an_event_in_its_project(db: Database, registry: RegistryService) -> None:
    ours = DeploymentService(db, registry, actor="ada")
    after = max((e.id for e in read_events(db, after_id=0, limit=100_000)), default=0)
    ours.create("churn-prod", "models:/churn@champion")
    ours.set_canary("churn-prod", "models:/churn/2", 25)
    events = [e for e in read_events(db, after_id=after) if e.kind.startswith("deployment.")]
    assert [e.kind for e in events] == ["deployment.created", "deployment.canary_started"]
    assert events[1].entity_id == "churn-prod"
    assert events[1].payload["state"]["canary"]["percent"] == 25
    elsewhere = DeploymentService(db, registry, actor="ada", project="nowhere")
    with pytest.raises(NotFoundError, match="project"):
        elsewhere.list()


def test_lineage_names_the_deployments_that_serve_a_version_now_or_did(
    deployments: DeploymentService, registry: RegistryService
) -> None:
    def relations(ref: str) -> dict[str, str]:
        found = registry.lineage(ref).downstream
        return {d["id"]: d["relation"] for d in found if d["type"] == "deployment"}

    registry.set_alias("churn", "champion", 1)
    deployments.create("churn-prod", "models:/churn@champion")
    deployments.create("churn-pinned", "models:/churn/3")
    deployments.create("other-prod", "models:/other/1")  # another model: never listed
    deployments.set_canary("churn-prod", "models:/churn/2", 25)
    assert relations("churn@1") == {"churn-prod": "serves @champion"}
    assert relations("churn@2") == {"churn-prod": "canary 25%"}
    assert relations("churn@3") == {"churn-pinned": "serves"}

    deployments.promote("churn-prod")  # the alias moves to 2 and the canary ends
    assert relations("churn@1") == {"churn-prod": "served earlier"}
    assert relations("churn@2") == {"churn-prod": "serves @champion, canary earlier"}


def test_servers_promoting_at_once_move_the_alias_once(
    db: Database, registry: RegistryService, deployments: DeploymentService
) -> None:
    # Every server following a deployment may find its canary healthy at the same moment.
    deployments.create("churn-prod", "models:/churn@champion")
    deployments.set_canary("churn-prod", "models:/churn/2", 20)
    servers = [DeploymentService(db, registry, actor=f"server-{i}") for i in range(4)]
    start = threading.Barrier(len(servers))

    def promote(service: DeploymentService) -> None:
        start.wait()
        # The losers find the canary taken and change nothing (no error: it is not theirs).
        service.promote(
            "churn-prod", reason=f"automatic promotion: {service.actor}", automatic=True
        )

    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(promote, servers))
    after = deployments.get("churn-prod")
    assert (after.current_version, after.canary) == (2, None)
    assert _actions(deployments, "churn-prod") == ["created", "canary_started", "promoted"]
    moves = [(m.from_version, m.to_version) for m in registry.alias_history("churn", "champion")]
    assert moves == [(None, 1), (1, 2)]


def test_a_promotion_whose_alias_cannot_move_changes_nothing(
    registry: RegistryService, deployments: DeploymentService
) -> None:
    deployments.create("churn-prod", "models:/churn@champion")
    deployments.set_canary("churn-prod", "models:/churn/2", 20)
    registry.delete_model_version("churn", 2)  # the canary's version is gone from the registry
    with pytest.raises(NotFoundError):
        deployments.promote("churn-prod")
    # Ending the canary and moving the alias are one transaction: neither happened.
    after = deployments.get("churn-prod")
    assert (after.current_version, after.canary["version"] if after.canary else None) == (1, 2)
    assert _actions(deployments, "churn-prod") == ["created", "canary_started"]
    assert [m.to_version for m in registry.alias_history("churn", "champion")] == [1]

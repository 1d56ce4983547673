"""The automatic promotion rule: how it is stored and checked, and how promotion happens once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from loopline.errors import InvalidArgumentError, InvalidStateError
from loopline.serving.endpoint import Limits, WindowStats

if TYPE_CHECKING:
    from loopline.serving.deployments import DeploymentService


def _register(name: str, C: float) -> None:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import loopline

    data = load_iris()
    frame = pd.DataFrame(data.data, columns=[f"f{i}" for i in range(4)])
    with loopline.start_run():
        loopline.log_model(
            LogisticRegression(C=C, max_iter=500).fit(frame, data.target),
            "model",
            registered_model_name=name,
        )


@pytest.fixture
def service() -> DeploymentService:
    import loopline
    from loopline.serving.deployments import open_deployments

    for c in (1.0, 0.1):
        _register("iris", c)
    loopline.registry.set_alias("iris", "champion", 1)
    found = open_deployments()
    found.create("iris-prod", "models:/iris@champion", limits={"min_requests": 5})
    return found


def test_the_rule_is_stored_with_the_limits_and_bad_values_change_nothing(
    service: DeploymentService,
) -> None:
    started = service.set_canary(
        "iris-prod", "models:/iris/2", 20, limits={"promote_after_requests": 30.0}
    )
    assert started.limits == {"min_requests": 5, "promote_after_requests": 30}
    assert isinstance(started.limits["promote_after_requests"], int)
    assert started.canary == {"model": "iris", "version": 2, "percent": 20}
    assert service.history("iris-prod")[-1].reason.endswith("promote_after_requests=30")
    changed = service.set_limits("iris-prod", {"promote_after_seconds": 45})
    assert changed.limits["promote_after_seconds"] == 45

    bad = {
        "at least 0": {"promote_after_requests": -1},
        "whole number": {"promote_after_requests": 2.5},
        "below min_requests": {"promote_after_requests": 3},
        "must be a number": {"promote_after_seconds": float("nan")},
        "unknown limit": {"promote_after": 10},
    }
    for message, limits in bad.items():
        with pytest.raises(InvalidArgumentError, match=message):
            service.set_limits("iris-prod", limits)
        with pytest.raises(InvalidArgumentError, match=message):
            service.set_canary("iris-prod", "models:/iris/2", 50, limits=limits)
    with pytest.raises(InvalidArgumentError, match="below min_requests"):
        service.set_limits("iris-prod", {"min_requests": 40})  # the stored rule says 30
    with pytest.raises(InvalidArgumentError, match="below min_requests"):
        service.create("other", "models:/iris/1", limits={"promote_after_requests": 10})
    after = service.get("iris-prod")
    assert after.revision == changed.revision
    assert after.canary == changed.canary  # the refused canary change left the share at 20
    assert "other" not in [d.name for d in service.list()]


def test_a_new_share_of_the_same_canary_keeps_its_start(service: DeploymentService) -> None:
    assert service.canary_since("iris-prod") is None
    service.set_canary("iris-prod", "models:/iris/1", 10)
    first = service.set_canary("iris-prod", "models:/iris/2", 10)
    started = service.history("iris-prod")[-1].created_at
    time.sleep(0.01)
    again = service.set_canary("iris-prod", "models:/iris/2", 50)
    assert again.canary == {**(first.canary or {}), "percent": 50}
    assert service.canary_since("iris-prod") == started
    time.sleep(0.01)
    service.set_shadow("iris-prod", "models:/iris/1")  # other changes keep it too
    assert service.canary_since("iris-prod") == started
    service.rollback("iris-prod")
    assert service.canary_since("iris-prod") is None
    service.set_canary("iris-prod", "models:/iris/2", 10)
    assert (
        service.canary_since("iris-prod") == service.history("iris-prod")[-1].created_at > started
    )


def test_automatic_promotion_happens_once_and_never_after_a_rollback(
    service: DeploymentService,
) -> None:
    import loopline
    from loopline.serving.deployments import open_deployments

    service.set_canary("iris-prod", "models:/iris/2", 20)
    other = open_deployments()  # a second serving process, its own connections
    with pytest.raises(InvalidStateError, match="not 1"):
        service.promote("iris-prod", version=1)
    assert other.promote("iris-prod", automatic=True, version=1).canary is not None  # not judged
    done = service.promote("iris-prod", reason="automatic promotion: test", automatic=True)
    late = other.promote("iris-prod", reason="automatic promotion: late", automatic=True)
    assert done.current_version == late.current_version == 2
    history = service.history("iris-prod")
    assert [h.action for h in history] == ["created", "canary_started", "promoted"]
    assert history[-1].reason == "automatic promotion: test"
    moves = loopline.registry.alias_history("iris", "champion")
    assert [(m.from_version, m.to_version) for m in moves][-1] == (1, 2)
    assert len(moves) == 2  # set to 1, then moved to 2 once
    with pytest.raises(InvalidStateError, match="no canary to promote"):
        service.promote("iris-prod")

    service.rollback("iris-prod")  # champion back to 1
    service.set_canary("iris-prod", "models:/iris/2", 20)
    service.rollback("iris-prod", reason="automatic rollback: test", automatic=True)
    assert other.promote("iris-prod", automatic=True, version=2).current_version == 1
    assert service.history("iris-prod")[-1].action == "canary_rolled_back"
    other.close()


def test_a_protected_alias_refuses_the_promotion_before_any_change(
    service: DeploymentService,
) -> None:
    service.registry.review("iris", 1, "approved")
    service.registry.set_alias("iris", "champion", 1, protect=True)
    service.set_canary("iris-prod", "models:/iris/2", 20)
    revision = service.get("iris-prod").revision
    with pytest.raises(InvalidStateError, match="protected"):
        service.promote("iris-prod", automatic=True, version=2)
    assert service.get("iris-prod").revision == revision
    assert service.get("iris-prod").current_version == 1


def test_window_stats_earn_a_promotion_only_once_judged_and_healthy() -> None:
    rule = Limits(min_requests=5, max_p99_ms=1000.0, promote_after_requests=8)
    stats = WindowStats()
    for _ in range(4):
        stats.add(1.0, False)
    assert stats.promotion(rule, 60.0) is None  # too few to judge
    for _ in range(3):
        stats.add(1.0, False)
    assert stats.promotion(rule, 60.0) is None  # judged, but 7 < 8
    stats.add(1.0, False)
    assert "served 8 requests" in (stats.promotion(rule, 60.0) or "")
    assert stats.promotion(Limits(min_requests=5), 60.0) is None  # no rule: manual only
    timed = Limits(min_requests=5, promote_after_requests=8, promote_after_seconds=30)
    assert stats.promotion(timed, 29.0) is None
    assert stats.promotion(timed, 31.0) is not None
    for _ in range(8):
        stats.add(5000.0, True)
    assert stats.breach(rule) is not None
    assert stats.promotion(rule, 60.0) is None  # a breaching canary is never promoted
    stats.clear()
    assert stats.total == 0

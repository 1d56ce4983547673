"""The route -> role table, the rate limiter and the helpers behind the permission check."""

from __future__ import annotations

import pytest

from loopline.auth.bind import is_loopback
from loopline.auth.collab import mentions_in
from loopline.auth.ratelimit import RateLimiter
from loopline.auth.roles import Role
from loopline.auth.rules import required_role
from loopline.auth.scope import ids_in_body, ids_in_path, ids_in_query


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/health", Role.OPEN),
        ("POST", "/api/v1/auth/login", Role.OPEN),
        ("GET", "/assets/app.js", Role.OPEN),
        ("GET", "/openapi.json", Role.AUTHENTICATED),
        ("GET", "/api/v1/experiments", Role.VIEWER),
        ("POST", "/api/v1/runs/search", Role.VIEWER),
        ("POST", "/ajax-api/2.0/mlflow/runs/search", Role.VIEWER),
        ("POST", "/api/v1/writes", Role.EDITOR),
        ("POST", "/api/2.0/mlflow/runs/log-metric", Role.EDITOR),
        ("POST", "/api/2.0/mlflow/registered-models/alias", Role.MAINTAINER),
        ("PUT", "/api/v1/registry/aliases", Role.MAINTAINER),
        ("POST", "/api/v1/deployments/x/rollout", Role.MAINTAINER),
        ("GET", "/api/v1/deployments", Role.VIEWER),
        ("PUT", "/api/v1/projects/p/members/u", Role.ADMIN),
        ("POST", "/api/v1/users", Role.SERVER_ADMIN),
        ("GET", "/api/v1/audit/export", Role.SERVER_ADMIN),
        # Routes nobody has written yet fall to the safe side.
        ("DELETE", "/api/v1/ui/anything", Role.EDITOR),
        ("PATCH", "/api/v1/pipelines/new-route", Role.EDITOR),
        ("GET", "/api/v1/monitors/m", Role.VIEWER),
    ],
)
def test_each_route_needs_the_role_of_its_kind(method: str, path: str, role: Role) -> None:
    assert required_role(method, path) == role


def test_the_rate_limiter_refuses_past_the_limit_and_recovers() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=3, window=10.0, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit("b")  # keys are independent
    assert limiter.retry_after("a") == pytest.approx(10.0)
    now[0] = 10.5
    assert limiter.hit("a")


def test_ids_are_found_in_paths_queries_and_bodies() -> None:
    assert ids_in_path("/api/v1/runs/abc/artifacts/x").runs == {"abc"}
    assert not ids_in_path("/api/v1/runs/search").runs
    assert ids_in_path("/api/2.0/mlflow-artifacts/artifacts/4/r/artifacts/m").experiments == {"4"}
    assert ids_in_query(b"run_uuid=z").runs == {"z"}
    body = {"experiment_ids": ["1", 2], "run_id": "r", "items": [{"experiment_id": "9"}]}
    found = ids_in_body("/api/2.0/mlflow/runs/search", body)
    assert found.experiments == {"1", "2", "9"}
    assert found.runs == {"r"}
    assert not ids_in_body("/x", ["not", "objects"])


def test_mentions_and_loopback_addresses() -> None:
    assert mentions_in("@a, @b_c and email x@y.z") == ["a", "b_c"]
    assert is_loopback("127.0.0.2")
    assert not is_loopback("example.com")


def test_roles_parse_case_insensitively_and_reject_unknown_names() -> None:
    assert Role.parse(" ADMIN ") is Role.ADMIN
    with pytest.raises(Exception, match="unknown role"):
        Role.parse("root")

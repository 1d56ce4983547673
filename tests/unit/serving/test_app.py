"""The inference app in process (httpx over ASGI): routes, input errors, tokens."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from loopline.serving.app import InferenceApp
from loopline.serving.endpoint import Endpoint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from loopline.serving.model import ServedModel

ROW = [5.1, 3.5, 1.4, 0.2]


def _call(app: InferenceApp, requests: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return await requests(client)

    return asyncio.run(main())


def _app(model: ServedModel, **options: Any) -> InferenceApp:
    return InferenceApp({"iris": Endpoint("iris", model)}, **options)


def test_answers_and_input_errors_name_the_problem(iris_model: ServedModel) -> None:
    app = _app(iris_model, max_body_bytes=2_000)

    async def requests(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
        v2 = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
        return {
            "ok": await client.post("/invocations", json={"instances": [ROW]}),
            "v2": await client.post("/v2/models/iris/infer", json=v2),
            "id": await client.post(
                "/invocations", json={"instances": [ROW]}, headers={"x-request-id": "abc-1"}
            ),
            "short": await client.post("/invocations", json={"instances": [ROW[:3]]}),
            "column": await client.post(
                "/invocations",
                json={"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [ROW]}},
            ),
            "json": await client.post("/invocations", content=b"{nope"),
            "big": await client.post("/invocations", json={"instances": [ROW] * 200}),
            "unknown": await client.post("/v2/models/nope/infer", json=v2),
            "version": await client.post("/v2/models/iris/versions/9/infer", json=v2),
            "route": await client.get("/nowhere"),
        }

    got = _call(app, requests)
    assert got["ok"].status_code == 200
    assert got["ok"].json()["predictions"] == [0]
    assert got["v2"].json()["outputs"][0]["data"] == [0]
    assert got["id"].headers["x-request-id"] == "abc-1"
    assert got["short"].status_code == 400
    assert "4 columns" in got["short"].json()["message"]
    assert got["column"].status_code == 400
    assert "sepal_length" in got["column"].text
    assert got["json"].status_code == 400
    assert "JSON" in got["json"].json()["message"]
    assert got["big"].status_code == 413
    assert got["unknown"].status_code == 404
    assert "iris" in got["unknown"].json()["hint"]
    assert got["version"].status_code == 404
    assert got["route"].status_code == 404
    metrics = app.metrics.render().decode()
    assert 'loopline_inference_errors_total{kind="client",model="iris"' in metrics


@pytest.fixture
def tokens() -> dict[str, str]:
    """A viewer of the default project, a user of no project, and a revoked token."""
    from loopline.auth.roles import Role
    from loopline.auth.store import AuthStore
    from loopline.config import get_settings
    from loopline.store.metadata import Database

    db = Database(get_settings().metadata_url)
    try:
        store = AuthStore(db)
        for name in ("viewer", "stranger"):
            store.create_user(name, None)
        store.set_member("default", "viewer", Role.VIEWER, actor="test")
        viewer, _ = store.create_token("viewer")
        stranger, _ = store.create_token("stranger")
        revoked, info = store.create_token("viewer")
        store.revoke_token("viewer", int(info["id"]))
    finally:
        db.close()
    return {"viewer": viewer, "stranger": stranger, "revoked": revoked}


def test_with_tokens_only_health_readiness_and_metrics_stay_open(
    iris_model: ServedModel, tokens: dict[str, str]
) -> None:
    from loopline.config import get_settings
    from loopline.serving.auth import TokenAuthorizer

    app = _app(iris_model, authorize=TokenAuthorizer(get_settings()))

    def bearer(who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {tokens[who]}"}

    async def requests(client: httpx.AsyncClient) -> dict[str, Any]:
        opened = [
            (await client.get(path)).status_code
            for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/metrics", "/v2")
        ]
        opened.append((await client.get("/v2/models/iris/ready")).status_code)
        body = {"instances": [ROW]}
        return {
            "open": opened,
            "none": await client.post("/invocations", json=body),
            "garbage": await client.post(
                "/invocations",
                json=body,
                headers={"authorization": "Bearer llt_nope"},
            ),
            "revoked": await client.post("/invocations", json=body, headers=bearer("revoked")),
            "stranger": await client.post("/invocations", json=body, headers=bearer("stranger")),
            "viewer": await client.post("/invocations", json=body, headers=bearer("viewer")),
            "again": await client.post("/invocations", json=body, headers=bearer("viewer")),
            "metadata": await client.get("/v2/models/iris"),
            "feedback": await client.post("/v1/feedback", json={"request_id": "x", "label": 1}),
        }

    got = _call(app, requests)
    assert got["open"] == [200] * 6
    assert got["none"].status_code == 401
    assert got["none"].headers["www-authenticate"] == "Bearer"
    assert "loopline tokens create" in got["none"].json()["hint"]
    assert got["garbage"].status_code == 401
    assert got["revoked"].status_code == 401
    assert got["stranger"].status_code == 403
    assert got["viewer"].status_code == 200
    assert got["again"].status_code == 200
    assert got["metadata"].status_code == 401
    assert got["feedback"].status_code == 401

"""The server side of the UI over HTTP: the single-page app's routes and the /api/v1/ui reads."""

from __future__ import annotations

import math

import httpx

from loopline.client.client import Client


def test_client_routes_answer_the_app_and_server_routes_stay_theirs(ui_url: str) -> None:
    for path in ("/", "/runs/abc?tab=metrics", "/models/model?name=x", "/data/a/1"):
        answer = httpx.get(f"{ui_url}{path}")
        assert answer.status_code == 200, path
        assert '<div id="root">' in answer.text
        assert answer.headers["cache-control"] == "no-cache"
    missing = httpx.get(f"{ui_url}/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert httpx.get(f"{ui_url}/health").json()["status"] == "ok"
    assert "swagger" in httpx.get(f"{ui_url}/docs").text.lower()
    assert httpx.get(f"{ui_url}/openapi.json").json()["info"]["title"] == "loopline"


def test_hashed_assets_are_cached_for_good_and_sent_compressed(ui_url: str) -> None:
    index = httpx.get(f"{ui_url}/").text
    script = index.split('src="', 1)[1].split('"', 1)[0]
    assert script.startswith("/assets/")
    plain = httpx.get(f"{ui_url}{script}", headers={"accept-encoding": "identity"})
    packed = httpx.get(f"{ui_url}{script}", headers={"accept-encoding": "gzip"})
    assert plain.headers["cache-control"] == packed.headers["cache-control"]
    assert "immutable" in plain.headers["cache-control"]
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < int(plain.headers["content-length"]) / 2
    assert packed.content == plain.content  # httpx decoded the gzip: the same script
    for sneaky in ("/assets/..%2F..%2F..%2F..%2Fpyproject.toml", "/assets/%2e%2e/%2e%2e/ui.py"):
        answer = httpx.get(f"{ui_url}{sneaky}")
        assert answer.status_code == 404, sneaky
        assert "build-system" not in answer.text


def test_metric_history_is_downsampled_keeping_ends_and_extremes(ui_url: str) -> None:
    client = Client(tracking_uri=ui_url)
    try:
        experiment = client.create_experiment("ui-long-curve")
        run = client.create_run(experiment, run_name="long")
        values = [math.sin(s / 500) for s in range(100_000)]
        values[31_337] = 50.0  # a spike must survive the cut
        values[77_777] = math.nan
        client.log_batch(
            run.run_id, metrics=[("loss", v, 1_000 + s, s) for s, v in enumerate(values)]
        )
        client.flush()
    finally:
        client.close()
    answer = httpx.get(
        f"{ui_url}/api/v1/ui/metric-history",
        params={"run_id": run.run_id, "key": "loss", "max_points": 500},
        timeout=60,
    ).json()
    assert answer["total"] == 100_000
    assert answer["nonfinite"] == 1
    assert len(answer["steps"]) == len(answer["values"]) == 500
    assert answer["steps"][0] == 0
    assert answer["steps"][-1] == 99_999
    assert answer["steps"] == sorted(answer["steps"])
    assert 31_337 in answer["steps"]
    assert max(v for v in answer["values"] if v is not None) == 50.0
    assert answer["timestamps"][0] == 1_000

    missing = httpx.get(
        f"{ui_url}/api/v1/ui/metric-history", params={"run_id": "nope", "key": "loss"}
    )
    assert missing.status_code == 404


def test_runs_table_pages_and_counts(ui_url: str) -> None:
    demo = httpx.get(f"{ui_url}/api/v1/experiments/by-name", params={"name": "demo"}).json()
    eid = demo["experiment"]["experiment_id"]
    whole = httpx.get(f"{ui_url}/api/v1/ui/runs", params={"experiment_ids": eid}).json()
    assert whole["total"] == len(whole["rows"]) == 5
    assert not whole["truncated"]
    assert whole["tags"]
    assert not any(r[10] for r in whole["rows"])
    page = httpx.get(
        f"{ui_url}/api/v1/ui/runs",
        params={"experiment_ids": eid, "limit": 2, "order_by": "metrics.auc DESC", "tags": True},
    ).json()
    assert page["total"] == 5
    assert page["truncated"]
    assert len(page["rows"]) == 2
    auc = page["metrics"].index("auc")
    best = sorted((r[9][auc] for r in whole["rows"]), reverse=True)[:2]
    assert [r[9][auc] for r in page["rows"]] == best
    assert "demo_session" in page["tags"]
    assert all(r[10] for r in page["rows"])

    bad = httpx.get(
        f"{ui_url}/api/v1/ui/runs", params={"experiment_ids": eid, "filter": "metrics.auc >"}
    )
    assert bad.status_code == 400
    assert "position" in bad.json()["message"]

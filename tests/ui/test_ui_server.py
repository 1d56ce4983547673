"""The server side of the UI over HTTP: the single-page app's routes and the /api/v1/ui reads."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import httpx

from loopline.client.client import Client

if TYPE_CHECKING:
    from pathlib import Path


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


def test_compare_reads_one_metric_of_several_runs_in_one_request(ui_url: str) -> None:
    client = Client(tracking_uri=ui_url)
    try:
        experiment = client.create_experiment("ui-compare-histories")
        runs = [client.create_run(experiment, run_name=f"r{i}").run_id for i in range(3)]
        for i, run_id in enumerate(runs[:2]):  # the third logs another metric only
            client.log_batch(
                run_id, metrics=[("loss", (i + 1) / (s + 1), 1_000 + s, s) for s in range(5_000)]
            )
        client.log_batch(runs[2], metrics=[("acc", 0.9, 1_000, 0)])
        client.flush()
    finally:
        client.close()
    url = f"{ui_url}/api/v1/ui/compare-histories"
    answer = httpx.get(
        url, params={"run_ids": ",".join(reversed(runs)), "key": "loss", "max_points": 100}
    ).json()
    # In the order asked, only the runs that logged the metric, each downsampled.
    assert [h["run_id"] for h in answer["histories"]] == [runs[1], runs[0]]
    assert all(h["total"] == 5_000 and len(h["values"]) == 100 for h in answer["histories"])
    assert answer["histories"][0]["values"][0] == 2.0
    missing = httpx.get(url, params={"run_ids": f"{runs[0]},nope", "key": "loss"})
    assert missing.status_code == 404
    too_many = httpx.get(
        url, params={"run_ids": ",".join(f"r{i}" for i in range(101)), "key": "loss"}
    )
    assert too_many.status_code == 400


def test_runs_table_pages_and_counts(ui_url: str) -> None:
    demo = httpx.get(f"{ui_url}/api/v1/experiments/by-name", params={"name": "demo"}).json()
    eid = demo["experiment"]["experiment_id"]
    whole = httpx.get(f"{ui_url}/api/v1/ui/runs", params={"experiment_ids": eid}).json()
    assert whole["total"] == len(whole["rows"]) == 5
    assert not whole["truncated"]
    assert all(r[10] is None for r in whole["rows"])  # tag values only when asked for
    assert all(r[6] == eid and r[2] == "FINISHED" for r in whole["rows"])
    assert all(r[8] and r[9] for r in whole["rows"])
    page = httpx.get(
        f"{ui_url}/api/v1/ui/runs",
        params={"experiment_ids": eid, "limit": 2, "order_by": "metrics.auc DESC", "tags": True},
    ).json()
    assert page["total"] == 5
    assert page["truncated"]
    assert len(page["rows"]) == 2
    best = sorted((r[9]["auc"] for r in whole["rows"]), reverse=True)[:2]
    assert [r[9]["auc"] for r in page["rows"]] == best
    assert all("demo_session" in r[10] for r in page["rows"])

    keys = httpx.get(f"{ui_url}/api/v1/ui/run-keys", params={"experiment_ids": eid}).json()
    assert "auc" in keys["metrics"]
    assert "demo_session" in keys["tags"]
    assert keys["params"] == sorted({k for r in whole["rows"] for k in r[8]})

    bad = httpx.get(
        f"{ui_url}/api/v1/ui/runs", params={"experiment_ids": eid, "filter": "metrics.auc >"}
    )
    assert bad.status_code == 400
    assert "position" in bad.json()["message"]


def test_runs_table_is_json_from_sql_with_odd_values_and_large_answers_gzipped(
    ui_url: str,
) -> None:
    client = Client(tracking_uri=ui_url)
    try:
        experiment = client.create_experiment("ui-odd-values")
        odd = client.create_run(experiment, run_name='quote " and \\ back\nslash')
        client.log_batch(
            odd.run_id,
            params={"note": 'say "hi"\t\u00e9\u4e2d'},
            metrics=[("inf", math.inf, 0, 0), ("nan", math.nan, 0, 0), ("third", 1 / 3, 0, 0)],
            tags={"long": "x" * 5000},
        )
        for i in range(400):  # enough rows to pass the compression threshold
            run = client.create_run(experiment, run_name=f"filler-{i:03d}-" + "y" * 150)
            client.log_batch(run.run_id, params={"i": str(i)}, metrics=[("m", i / 7, 0, 0)])
        client.flush()
    finally:
        client.close()
    answer = httpx.get(
        f"{ui_url}/api/v1/ui/runs",
        params={"experiment_ids": experiment, "tags": True},
        headers={"accept-encoding": "gzip"},
    )
    assert answer.headers["content-encoding"] == "gzip"
    assert int(answer.headers["content-length"]) < len(answer.content) / 3
    table = answer.json()  # httpx undid the gzip; the text is valid JSON
    assert table["total"] == 401
    row = next(r for r in table["rows"] if r[0] == odd.run_id)
    assert row[1] == 'quote " and \\ back\nslash'
    assert row[8] == {"note": 'say "hi"\t\u00e9\u4e2d'}
    assert row[9]["inf"] is None
    assert row[9]["nan"] is None
    assert abs(row[9]["third"] - 1 / 3) < 1e-12
    assert row[10]["long"] == "x" * 200  # cut for the table
    plain = httpx.get(
        f"{ui_url}/api/v1/ui/runs",
        params={"experiment_ids": experiment, "limit": 3},
        headers={"accept-encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers
    assert plain.json()["total"] == 401
    assert len(plain.json()["rows"]) == 3


def test_metric_history_reads_one_covering_index(tmp_path: Path) -> None:
    """The history query is an index-only scan in step order: no table lookups, no sort."""
    import sqlalchemy as sa

    from loopline.server.api.ui_support import history_query
    from loopline.store.metadata import Database

    db = Database(f"sqlite:///{tmp_path}/m.db")
    query = history_query("r", "loss")
    with db.read() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(
            str(row[-1]) for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert "COVERING INDEX ix_metrics_run_id_key_step_timestamp_id_value" in plan, plan
    assert "TEMP B-TREE" not in plan, plan

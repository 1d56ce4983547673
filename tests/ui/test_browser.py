"""The web UI in headless Chromium against a real server over the demo's store.

Each test opens views the way a user would, checks what they show against the
REST API, and writes a screenshot of the main views to ``out/ui-screenshots``.
The ``page`` fixture fails a test on any console error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from loopline.demo.main import MODEL_NAME
from ui.conftest import shoot

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The first test also waits for the package's store to fill (a demo, pipeline runs, a
# served deployment, monitor runs): a few minutes on a busy machine.
pytestmark = pytest.mark.timeout(420)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def api(url: str, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{url}{path}", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def experiment_id(url: str, name: str) -> str:
    return str(api(url, "/api/v1/experiments/by-name", name=name)["experiment"]["experiment_id"])


def search(url: str, experiment: str, **body: Any) -> list[dict[str, Any]]:
    answer = httpx.post(
        f"{url}/api/v1/runs/search", json={"experiment_ids": [experiment], **body}, timeout=30
    )
    answer.raise_for_status()
    runs: list[dict[str, Any]] = answer.json()["runs"]
    return runs


def row_names(page: Page) -> list[str]:
    cells = page.get_by_test_id("runs-grid").locator('.vrow[data-run-id] [data-col="name"]')
    return [text.strip() for text in cells.all_inner_texts()]


def test_experiments_list_search_and_create(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/")
    expect(page).to_have_url(re.compile(r"/experiments$"))
    table = page.get_by_test_id("experiments")
    expect(table).to_contain_text("demo")
    expect(table).to_contain_text("ui-artifacts")
    shoot(page, "experiments")

    page.get_by_label("New experiment name").fill("made-in-the-browser")
    page.get_by_role("button", name="Create").click()
    expect(table).to_contain_text("made-in-the-browser")
    assert api(ui_url, "/api/v1/experiments/by-name", name="made-in-the-browser")["experiment"]

    page.get_by_label("Search experiments").fill("artifacts")
    expect(page).to_have_url(re.compile(r"q=artifacts"))
    expect(table.locator("tbody tr")).to_have_count(1)


def test_runs_table_sorts_filters_and_keeps_its_state_in_the_url(page: Page, ui_url: str) -> None:
    demo = experiment_id(ui_url, "demo")
    page.goto(f"{ui_url}/runs?e={demo}")
    expect(page.get_by_test_id("run-count")).to_have_text(re.compile(r"^5 runs"))

    page.locator(".vhead button", has_text=re.compile(r"^auc")).click()
    expect(page).to_have_url(re.compile(r"sort=m\.auc"))
    by_auc = [r["info"]["run_name"] for r in search(ui_url, demo, order_by=["metrics.auc DESC"])]
    assert row_names(page) == by_auc
    page.locator(".vhead button", has_text=re.compile(r"^auc")).click()
    expect(page).to_have_url(re.compile(r"dir=asc"))
    assert row_names(page) == by_auc[::-1]
    shoot(page, "runs")

    page.get_by_label("Filter runs").fill("params.model = 'logistic_regression'")
    page.get_by_label("Filter runs").press("Enter")
    expect(page.get_by_test_id("run-count")).to_have_text(re.compile(r"^2 runs"))
    matching = search(ui_url, demo, filter="params.model = 'logistic_regression'")
    assert sorted(row_names(page)) == sorted(r["info"]["run_name"] for r in matching)

    # The link alone restores the view: filter, sort and direction.
    page.goto(page.url)
    expect(page.get_by_test_id("run-count")).to_have_text(re.compile(r"^2 runs"))
    expect(page.get_by_label("Filter runs")).to_have_value("params.model = 'logistic_regression'")
    expect(page.locator(".vhead button", has_text="auc ▲")).to_be_visible()

    page.get_by_text("Columns (").click()
    page.locator(".chooser-body label", has_text=re.compile(r"^n_train$")).click()
    expect(page).to_have_url(re.compile(r"cols=[^&]*p\.n_train"))
    expect(page.locator('.vrow[data-run-id] [data-col="p.n_train"]').first).not_to_be_empty()


def test_a_bad_filter_says_where_it_is_wrong(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/runs?e={experiment_id(ui_url, 'demo')}")
    page.get_by_label("Filter runs").fill("metrics.auc >")
    page.get_by_label("Filter runs").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("position")
    # The browser logs the 400 answer itself: expected here, not a fault of the page.
    page.console_errors.clear()  # type: ignore[attr-defined]


def test_run_page_charts_and_artifact_previews(page: Page, ui_url: str) -> None:
    run = search(ui_url, experiment_id(ui_url, "ui-artifacts"))[0]
    run_id = run["info"]["run_id"]
    page.goto(f"{ui_url}/runs/{run_id}")
    expect(page.locator("main")).to_contain_text("adam")

    page.get_by_role("tab", name="Metrics").click()
    chart = page.get_by_test_id("metric-chart").first
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(page.locator("main")).to_contain_text("500 points")
    page.get_by_label("Log scale").check()
    page.get_by_label("X axis").select_option("time")
    expect(page).to_have_url(re.compile(r"log=1"))
    expect(page).to_have_url(re.compile(r"x=time"))
    expect(chart).to_have_attribute("data-drawn", "true")
    shoot(page, "run-metrics")

    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_role("button", name="config.json").click()
    expect(page.get_by_test_id("artifact-preview")).to_contain_text('"threshold": 0.5')
    page.get_by_role("button", name="scores.csv").click()
    table = page.get_by_test_id("csv-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table).to_contain_text("gamma")
    shoot(page, "run-artifacts")


def test_demo_run_shows_its_report_figure_and_lineage(page: Page, ui_url: str) -> None:
    run = search(ui_url, experiment_id(ui_url, "demo"), order_by=["metrics.auc DESC"])[0]
    run_id = run["info"]["run_id"]
    page.goto(f"{ui_url}/runs/{run_id}?tab=artifacts&file=classification_report.txt")
    expect(page.get_by_test_id("artifact-preview")).to_contain_text("precision")
    page.get_by_role("button", name="confusion_matrix.png").click()
    image = page.get_by_test_id("artifact-preview").locator("img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    shoot(page, "run-figure")

    page.get_by_role("tab", name="Lineage").click()
    expect(page.locator(".lineage")).to_contain_text("breast-cancer@1")
    expect(page.locator(".lineage")).to_contain_text(f"{MODEL_NAME}@1")


def test_compare_overlays_the_curves_of_the_picked_runs(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/runs?e={experiment_id(ui_url, 'demo')}")
    for name in ("mlp", "gradient-boosting", "random-forest"):
        page.get_by_label(f"select run {name}").check()
    page.get_by_role("button", name="Compare 3 selected").click()
    expect(page).to_have_url(re.compile(r"/compare\?runs="))

    page.get_by_label("Metric", exact=True).select_option("test_auc")
    chart = page.get_by_test_id("metric-chart")
    expect(chart).to_have_attribute("data-series", "3")
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(chart.locator(".u-legend")).to_contain_text("gradient-boosting")
    expect(page.get_by_test_id("scatter-chart")).to_have_attribute("data-drawn", "true")

    diff = page.get_by_test_id("diff-table")
    expect(diff).to_contain_text("n_estimators")
    page.get_by_label("only differences").check()
    rows = diff.locator("tbody tr")
    assert rows.count() > 0
    assert rows.count() == diff.locator("tbody tr.differs").count()
    shoot(page, "compare", full_page=True)


def test_data_versions_diff_schema_and_profile(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/data")
    page.get_by_role("link", name="breast-cancer", exact=True).click()
    expect(page.get_by_test_id("versions").locator("tbody tr")).to_have_count(2)
    page.get_by_label("diff from 1").check()
    page.get_by_label("diff to 2").check()
    page.get_by_role("button", name=re.compile("^Diff")).click()
    expect(page.get_by_test_id("diff")).to_contain_text("breast_cancer.csv")
    expect(page.locator("main")).to_contain_text("added columns: batch")
    expect(page.locator("main")).to_contain_text("569 → 400")
    shoot(page, "data-diff")

    page.goto(f"{ui_url}/data/breast-cancer/2?tab=profile")
    profile = page.get_by_test_id("profile")
    expect(profile).to_contain_text("batch")
    expect(profile.locator(".histogram").first).to_be_visible()
    shoot(page, "data-profile")
    page.get_by_role("tab", name="Schema").click()
    expect(page.get_by_test_id("schema")).to_contain_text("mean radius")


def test_moving_an_alias_from_the_ui_changes_the_registry(page: Page, ui_url: str) -> None:
    def alias_version() -> int:
        aliases = api(ui_url, "/api/v1/registry/aliases", name=MODEL_NAME)["aliases"]
        return next(a["version"] for a in aliases if a["alias"] == "champion")

    assert alias_version() == 1
    page.goto(f"{ui_url}/models")
    page.get_by_role("link", name=MODEL_NAME).click()
    expect(page.get_by_test_id("model-versions").locator("tbody tr")).to_have_count(2)

    page.locator('tr[data-version="2"]').get_by_role("button", name="Approve").click()
    expect(page.locator('tr[data-version="2"]')).to_contain_text("approved")
    version = api(ui_url, "/api/v1/registry/version", name=MODEL_NAME, version=2)["version"]
    assert version["review_status"] == "approved"

    page.get_by_role("tab", name="Aliases").click()
    page.get_by_label("Alias name").fill("champion")
    page.get_by_label("Target version").select_option("2")
    page.get_by_label("Reason").fill("moved in the browser test")
    page.get_by_role("button", name="Move alias").click()
    expect(page.get_by_role("status")).to_contain_text("@champion now points at v2")
    assert alias_version() == 2
    expect(page.locator('[data-alias="champion"]')).to_contain_text("v2")
    shoot(page, "model-aliases")

    page.get_by_role("tab", name="Alias history").click()
    expect(page.get_by_test_id("alias-history")).to_contain_text("moved in the browser test")

    page.goto(f"{ui_url}/models/version?name={MODEL_NAME}&version=1")
    graph = page.get_by_test_id("lineage-graph")
    expect(graph).to_contain_text("breast-cancer@1")
    expect(graph).to_contain_text("Deployments")
    shoot(page, "model-lineage")


def test_pipelines_runs_dag_logs_and_triggers(page: Page, ui_url: str) -> None:
    runs = api(ui_url, "/api/v1/pipelines/runs")["runs"]
    failed = next(r for r in runs if r["status"] == "failed")
    page.goto(f"{ui_url}/pipelines")
    table = page.get_by_test_id("pipeline-runs")
    expect(table.locator("tbody tr")).to_have_count(len(runs))
    row = table.locator(f'tr[data-run-id="{failed["id"]}"]')
    expect(row).to_contain_text("failed")
    shoot(page, "pipelines")

    row.get_by_role("link").click()
    dag = page.get_by_test_id("pipeline-dag")
    expect(dag.locator("g.node")).to_have_count(5)
    expect(dag.locator("path.edge")).to_have_count(6)  # load fans out to 3, compare takes 3
    expect(dag.locator('[data-step="check"]')).to_have_attribute("data-status", "failed")
    expect(dag.locator('[data-step="compare"]')).to_have_attribute("data-status", "skipped")
    # The failed step opens first: its traceback and what it printed.
    expect(page.get_by_test_id("step-traceback")).to_contain_text(
        "ValueError: check failed on purpose"
    )
    expect(page.get_by_test_id("step-logs")).to_contain_text("checking 569 rows")
    shoot(page, "pipeline-run", full_page=True)

    succeeded = next(r for r in runs if r["status"] == "succeeded")
    page.goto(f"{ui_url}/pipelines/runs/{succeeded['id']}")
    expect(
        page.get_by_test_id("pipeline-dag").locator('[data-status="succeeded"]').first
    ).to_be_visible()
    page.get_by_test_id("pipeline-dag").locator('[data-step="compare"]').click()
    expect(page).to_have_url(re.compile(r"step=compare"))
    expect(page.get_by_test_id("step-logs")).to_contain_text("threshold")

    page.goto(f"{ui_url}/pipelines?tab=triggers")
    triggers = page.get_by_test_id("pipeline-triggers")
    expect(triggers).to_contain_text("cron 0 3 * * *")
    expect(triggers).to_contain_text("each new version of cancer-mini")
    shoot(page, "pipeline-triggers")
    page.get_by_role("tab", name="Firings").click()
    firings = page.get_by_test_id("pipeline-firings")
    expect(firings).to_contain_text("new data cancer-mini@2")
    fired = api(ui_url, "/api/v1/pipelines/firings")["firings"][0]
    expect(firings).to_contain_text(fired["pipeline_run_id"][:12])


def test_deployment_split_traffic_and_history(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/deployments")
    page.get_by_test_id("deployments").get_by_role("link", name="cancer-prod").click()
    split = page.get_by_test_id("traffic-split")
    expect(split).to_contain_text("primary 70%")
    expect(split).to_contain_text("canary 30%")
    expect(split).to_contain_text("cancer-mini@champion → v1")
    traffic = api(ui_url, "/api/v1/ui/deployments/cancer-prod/traffic")
    assert traffic["requests"] == 180  # 360 rows, two per request, from the serve session
    assert set(traffic["series"]) == {"primary", "canary"}
    summary = page.get_by_test_id("traffic-summary")
    expect(summary).to_contain_text("180 requests (360 rows)")
    expect(summary).to_contain_text(f"canary {traffic['series']['canary']['total']}")
    charts = page.get_by_test_id("traffic").get_by_test_id("metric-chart")
    expect(charts).to_have_count(2)
    expect(charts.first).to_have_attribute("data-drawn", "true")
    expect(charts.last).to_have_attribute("data-series", "4")  # p50 and p99 per variant
    expect(page.get_by_test_id("errors-note")).to_contain_text("not written to the prediction log")
    history = page.get_by_test_id("rollout-history")
    expect(history).to_contain_text("canary started")
    expect(history).to_contain_text("30% of traffic to cancer-mini version 2")
    shoot(page, "deployment", full_page=True)

    # Lineage runs on to the deployment: v1 through the alias it follows, v2 as its canary.
    for version, relation in ((1, "serves @champion"), (2, "canary 30%")):
        page.goto(f"{ui_url}/models/version?name=cancer-mini&version={version}")
        graph = page.get_by_test_id("lineage-graph")
        expect(graph.get_by_role("link", name="cancer-prod")).to_be_visible()
        expect(graph).to_contain_text(relation)
    shoot(page, "model-lineage-deployed")


def test_monitoring_drift_distributions_quality_and_alerts(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/monitoring")
    expect(page.get_by_test_id("alerts")).to_contain_text("dataset drift")
    page.get_by_test_id("monitors").get_by_role("link", name="cancer-mon").click()
    chart = page.get_by_test_id("metric-chart")
    expect(chart).to_have_attribute("data-series", "5")  # one line per feature
    expect(chart).to_have_attribute("data-drawn", "true")
    runs = api(ui_url, "/api/v1/monitors/cancer-mon/runs")["runs"]
    assert [r["dataset_drift"] for r in runs] == [True, False, False]  # newest first
    expect(page.get_by_test_id("drift-verdict")).to_contain_text("Dataset drift")
    shifted = page.locator('[data-column="mean radius"]')
    expect(shifted).to_contain_text("drifted")
    expect(shifted.locator("svg rect.ref")).to_have_count(21)
    shoot(page, "monitoring-drift", full_page=True)

    page.get_by_label("Monitor run").select_option(str(runs[-1]["id"]))
    expect(page).to_have_url(re.compile(rf"run={runs[-1]['id']}"))
    expect(page.get_by_test_id("drift-verdict")).to_contain_text("No dataset drift")

    page.get_by_role("tab", name="Data quality").click()
    expect(page.get_by_test_id("quality")).to_contain_text("missing share")
    page.get_by_role("tab", name="Model quality").click()
    performance = page.get_by_test_id("performance")
    expect(performance).to_contain_text("accuracy")
    expect(page.locator("main")).to_contain_text("120 labelled rows")
    shoot(page, "monitoring-quality", full_page=True)
    page.get_by_role("tab", name="Alerts").click()
    expect(page.get_by_test_id("alerts")).to_contain_text("critical")

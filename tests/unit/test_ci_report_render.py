"""The CI report's HTML page is its Markdown rendered, with raw HTML escaped."""

from __future__ import annotations

from loopline.ci.report import CiReport, render


def _report() -> CiReport:
    return CiReport(
        run_id="abc123",
        pipeline="train",
        status="succeeded",
        verdict="failed",
        against="champion",
        model="churn",
        registered="churn/4",
        champion={"version": "3"},
        metrics=[{"name": "<b>auc</b>", "run": 0.91, "champion": 0.93, "delta": -0.02}],
        gates=[{"check": "auc >= 0.92", "value": 0.91, "expected": 0.92, "passed": False}],
        params=[{"name": "depth", "run": 6, "champion": 4}],
        plots=["evaluation.png"],
        error="<script>alert(1)</script>",
    )


def test_markdown_and_html_show_the_same_tables() -> None:
    markdown = render(_report(), "markdown")
    page = render(_report(), "html")
    assert "| depth | 6 | 4 |" in markdown
    assert page.startswith("<!doctype html>")
    assert page.count("<table>") == 3
    assert "<td>depth</td>" in page
    assert "<td><strong>FAIL</strong></td>" in page
    assert '<img src="evaluation.png"' in page


def test_names_and_errors_are_text_not_markup() -> None:
    page = render(_report(), "html")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<b>auc</b>" not in page
    assert "&lt;b&gt;auc&lt;/b&gt;" in page

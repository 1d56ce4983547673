"""The closed loop, smaller: it must keep working as every part changes.

Data versioned, a pipeline gates and registers the champion, a deployment serves it,
drifted traffic makes the monitor alert, the alert fires the retraining, the gate
lets the challenger through, the canary is promoted, and no request fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("river")


def test_the_loop_closes_by_itself(tmp_path: Path) -> None:
    import loopline.registry
    from loopline.demo.loop import run_loop

    result = run_loop(tmp_path / "loop", scale=0.3)

    assert result.stopped_for_approval == ""
    assert result.alerts >= 1
    assert result.retrain_run
    assert result.champion_after > result.champion_before
    assert loopline.registry.resolve("shuttle@champion").version == result.champion_after
    assert result.canary_requests >= 30
    assert result.requests > 500
    assert result.failed_requests == 0
    assert (Path(result.report) / "report.md").exists()
    assert Path(result.drift_report).read_text().lower().count("<html") == 1

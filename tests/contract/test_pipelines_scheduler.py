"""The scheduler on every backend: one lease holder, events consumed once across restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loopline.config import Settings
from loopline.events import emit
from loopline.pipelines.triggers import Scheduler, create_trigger, list_firings

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.store.metadata import Database


def _settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", tracking_uri=db.url)


def _alert(db: Database, monitor: str, alert_id: int) -> None:
    with db.write() as conn:
        emit(
            conn,
            "monitor.alert",
            "monitor",
            monitor,
            "monitoring",
            {
                "monitor": monitor,
                "alert_id": alert_id,
                "severity": "critical",
                "kind": "drift",
                "message": "drift in age",
                "dataset": "churn@7",
            },
        )


def test_one_scheduler_holds_the_lease_and_no_event_is_missed_or_repeated(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(db, tmp_path)
    trigger = create_trigger(
        db, target="/x/flow.py:train", pipeline="train", kind="alert", spec="churn-drift"
    )
    new_data = create_trigger(
        db, target="/x/flow.py:train", pipeline="train", kind="new_data", spec="churn"
    )
    first = Scheduler(settings, launch=False, holder="a")
    second = Scheduler(settings, launch=False, holder="b")
    try:
        _alert(db, "churn-drift", 1)
        _alert(db, "other-monitor", 2)
        assert first.tick().fired == 1
        assert second.tick().leader is False  # the lease is a's
        assert first.tick().fired == 0  # consumed once
        first.release()  # a stops; b takes over from the stored cursor
        _alert(db, "churn-drift", 3)
        with db.write() as conn:
            emit(
                conn,
                "dataset.version_added",
                "dataset_version",
                "9",
                "me",
                {
                    "dataset": "churn",
                    "version": 8,
                    "digest": "blake3:00",
                    "file_count": 1,
                    "total_size": 1,
                },
            )
        report = second.tick()
        assert report.leader
        assert report.fired == 2
    finally:
        first.close()
        second.close()
    firings = list_firings(db)
    assert sorted((f["trigger_id"], f["params"].get("dataset")) for f in firings) == [
        (trigger, "churn@7"),
        (trigger, "churn@7"),
        (new_data, "churn@8"),
    ]
    assert all(f["status"] == "pending" for f in firings)


def test_cron_fires_once_when_due(db: Database, tmp_path: Path) -> None:
    create_trigger(db, target="/x/flow.py:train", pipeline="train", kind="cron", spec="*/5 * * * *")
    sched = Scheduler(_settings(db, tmp_path), launch=False)
    try:
        assert sched.tick(datetime.now(tz=UTC)).fired == 0
        later = datetime.fromtimestamp(datetime.now(tz=UTC).timestamp() + 3600, tz=UTC)
        assert sched.tick(later).fired == 1  # an hour of missed slots fires once
        assert sched.tick(later).fired == 0
    finally:
        sched.close()

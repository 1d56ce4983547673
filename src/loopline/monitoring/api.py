"""The monitoring SDK: monitors on the store the settings name, or through its server.

>>> from loopline.data._doc import fresh_home
>>> _ = fresh_home()
>>> list_monitors()
[]
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from loopline.config import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from loopline.config import Settings
    from loopline.monitoring.service import MonitorApi, MonitorService

__all__ = [
    "alerts",
    "create_monitor",
    "delete_monitor",
    "get_monitor",
    "history",
    "list_monitors",
    "monitor_runs",
    "open_local",
    "open_service",
    "run_monitor",
]


@contextlib.contextmanager
def open_service(settings: Settings | None = None) -> Iterator[MonitorApi]:
    """Monitors on the settings' store, or through the server an ``http(s)://`` tracking
    URI names (closed afterwards)."""
    settings = settings or get_settings()
    if settings.remote and settings.tracking_uri:
        from loopline.monitoring.http import MonitorHttpClient

        client = MonitorHttpClient(settings.tracking_uri, token=settings.token,
                                   user=settings.user, project=settings.project)  # fmt: skip
        try:
            yield client
        finally:
            client.close()
        return
    with open_local(settings) as service:
        yield service


@contextlib.contextmanager
def open_local(settings: Settings) -> Iterator[MonitorService]:
    """The monitor service on the settings' own metadata database (never over HTTP)."""
    from loopline.data.service import DataService
    from loopline.monitoring.service import MonitorService as Service
    from loopline.store.metadata import Database

    db = Database(settings.metadata_url)
    service = Service(
        db, lambda: DataService(settings), settings.predictions_root,
        user=settings.user, project=settings.project,
    )  # fmt: skip
    try:
        yield service
    finally:
        service.close()
        db.close()


def create_monitor(
    name: str,
    *,
    deployment: str,
    reference: str,
    target: str | None = None,
    prediction: str | None = None,
    window: str = "1h",
    schedule: str | None = None,
    webhook: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create a monitor of ``deployment``'s predictions against dataset ``reference`` (NAME@REF)."""
    with open_service() as svc:
        return svc.create(
            name, deployment=deployment, reference=reference, target=target,
            prediction=prediction, window=window, schedule=schedule, webhook=webhook,
            config=config,
        )  # fmt: skip


def run_monitor(name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Run a monitor now: drift, quality, freshness and performance; alerts when crossed."""
    with open_service() as svc:
        return svc.run(name, now=now)


def list_monitors() -> list[dict[str, Any]]:
    """Every monitor of the project, by name."""
    with open_service() as svc:
        return svc.list_all()


def get_monitor(name: str) -> dict[str, Any]:
    """One monitor: its deployment, reference, window, schedule, settings."""
    with open_service() as svc:
        return svc.get(name)


def delete_monitor(name: str) -> None:
    """Delete a monitor with its runs, results and alerts."""
    with open_service() as svc:
        svc.delete(name)


def monitor_runs(name: str, limit: int = 50) -> list[dict[str, Any]]:
    """A monitor's runs with their reports (newest first)."""
    with open_service() as svc:
        return svc.runs(name, limit)


def history(
    name: str, *, column: str | None = None, category: str | None = None, metric: str | None = None
) -> list[dict[str, Any]]:
    """A monitor's results over time (oldest first): per column drift, quality, performance."""
    with open_service() as svc:
        return svc.history(name, column=column, category=category, metric=metric)


def alerts(name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Recorded alerts (newest first), of one monitor or all."""
    with open_service() as svc:
        return svc.alerts(name, limit)

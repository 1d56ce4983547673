"""Monitoring: monitors, their results over time, alerts (REST, under /api/v1/monitors).

==========  ===============================  ==============================================
Method      Path (under /api/v1/monitors)    What
==========  ===============================  ==============================================
GET         ``""``                           every monitor of the project
POST        ``""``                           create a monitor
GET         /alerts                          recorded alerts of every monitor
GET         /{name}                          one monitor
DELETE      /{name}                          delete a monitor with its history
POST        /{name}/run                      run it now (results, alerts, webhooks)
GET         /{name}/runs                     its runs, newest first, with their reports
GET         /{name}/runs/{run_id}            one run with its report
GET         /{name}/runs/{run_id}/           the run's reference-against-current histograms
            distributions                    (numeric: ``edges``; categorical: ``categories``)
GET         /{name}/history                  per-column results over time (``column``,
                                             ``category``, ``metric`` filter)
GET         /{name}/series                   the same as chart lines: shared ``xs`` (run
                                             times), one ``ys`` per column and metric
GET         /{name}/alerts                   its alerts
==========  ===============================  ==============================================

Model quality estimated before labels is in the ``performance`` history as
``estimated.<metric>`` beside the realised ``<metric>`` of the same run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from loopline.monitoring.service import MonitorService
from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import caller

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/monitors", tags=["monitors"], dependencies=[Depends(caller)])


def monitor_service(svc: ServiceDep) -> Iterator[MonitorService]:
    """Monitoring over the server's database and blobs; logs under the server's settings."""
    from loopline.config import get_settings
    from loopline.data.service import DataService

    def data() -> DataService:
        return DataService.over(svc.db, svc.blobs, user=svc.user, project=svc.project)

    service = MonitorService(
        svc.db, data, get_settings().predictions_root, user=svc.user, project=svc.project
    )
    try:
        yield service
    finally:
        service.close()


Monitors = Annotated[MonitorService, Depends(monitor_service)]


class NewMonitor(BaseModel):
    name: str = Field(max_length=256)
    deployment: str = Field(max_length=128)
    reference: str = Field(max_length=600)
    target: str | None = None
    prediction: str | None = None
    window: str = "1h"
    schedule: str | None = None
    webhook: str | None = Field(default=None, max_length=2000)
    config: dict[str, Any] | None = None


def _clean(value: Any) -> Any:
    from loopline.cli._output import jsonable

    return jsonable(value)


@router.get("", summary="List monitors")
def list_monitors(mon: Monitors) -> Response:
    return json_response({"monitors": mon.store.list_all()})


@router.post("", summary="Create a monitor")
def create_monitor(mon: Monitors, body: NewMonitor) -> Response:
    found = mon.create(
        body.name, deployment=body.deployment, reference=body.reference, target=body.target,
        prediction=body.prediction, window=body.window, schedule=body.schedule,
        webhook=body.webhook, config=body.config,
    )  # fmt: skip
    return json_response({"monitor": found}, status_code=201)


@router.get("/alerts", summary="Alerts of every monitor")
def all_alerts(mon: Monitors, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    return json_response({"alerts": mon.store.alerts(None, limit)})


@router.get("/{name}", summary="Show a monitor")
def get_monitor(mon: Monitors, name: str) -> Response:
    return json_response({"monitor": mon.store.get(name)})


@router.delete("/{name}", summary="Delete a monitor")
def delete_monitor(mon: Monitors, name: str) -> Response:
    mon.store.delete(name)
    return OK()


@router.post("/{name}/run", summary="Run a monitor now")
def run_monitor(mon: Monitors, name: str) -> Response:
    return json_response({"run": _clean(mon.run(name))})


@router.get("/{name}/runs", summary="Runs of a monitor, newest first")
def list_runs(
    mon: Monitors, name: str, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Response:
    return json_response({"runs": _clean(mon.store.runs(name, limit))})


@router.get("/{name}/runs/{run_id}", summary="One run of a monitor")
def get_run(mon: Monitors, name: str, run_id: int) -> Response:
    return json_response({"run": _clean(mon.store.run(name, run_id))})


@router.get("/{name}/runs/{run_id}/distributions", summary="Reference against current, per column")
def run_distributions(mon: Monitors, name: str, run_id: int) -> Response:
    from loopline.monitoring.charts import distributions

    return json_response(_clean(distributions(mon.store.run(name, run_id))))


def history_rows(
    mon: Monitors,
    name: str,
    column: str | None = None,
    category: str | None = None,
    metric: str | None = None,
) -> list[dict[str, Any]]:
    """A monitor's results over time, filtered by column, category (drift, quality,
    performance) and metric."""
    return mon.store.history(name, column=column, category=category, metric=metric)


HistoryRows = Annotated[list[dict[str, Any]], Depends(history_rows)]


@router.get("/{name}/series", summary="Results over time as chart lines")
def series(rows: HistoryRows) -> Response:
    from loopline.monitoring.charts import series as lines

    return json_response(_clean(lines(rows)))


@router.get("/{name}/history", summary="Per-column results over time")
def history(rows: HistoryRows) -> Response:
    return json_response({"history": rows})


@router.get("/{name}/alerts", summary="Alerts of a monitor")
def monitor_alerts(
    mon: Monitors, name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    return json_response({"alerts": mon.store.alerts(name, limit)})

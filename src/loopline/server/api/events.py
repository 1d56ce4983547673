"""``/api/v1/events``: read the durable event log from an id onwards."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from loopline.events import read_events
from loopline.server.api._common import ServiceDep, json_response
from loopline.server.deps import caller, readable_project_ids

__all__ = ["router"]

router = APIRouter(tags=["events"], dependencies=[Depends(caller)])

MAX_EVENTS = 10_000


@router.get("/events", summary="Events with an id above after_id, in id order")
def list_events(
    request: Request,
    svc: ServiceDep,
    after_id: int = Query(0, ge=0, le=2**63 - 1),
    kinds: list[str] | None = Query(
        None, description="event kinds (repeat, or comma-separate); 'run.*' matches a prefix"
    ),
    limit: int = Query(1000, ge=1, le=MAX_EVENTS),
) -> Response:
    wanted = [k for item in kinds or () for k in item.split(",") if k] or None
    found = read_events(
        svc.db,
        after_id=after_id,
        kinds=wanted,
        limit=limit,
        project_ids=readable_project_ids(request, svc.db),  # None: every project
    )
    return json_response({"events": [e.to_dict() for e in found]})

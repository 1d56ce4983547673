"""``/api/v1/writes`` and ``/api/v1/runs``: the batch write path, reads and search.

``POST /writes`` is the hot path: a :class:`~loopline.tracking.entities.RunWrites`
of up to 200,000 points, parsed with orjson straight from the body (no pydantic)
in a worker thread, so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loopline.errors import InvalidArgumentError
from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import caller
from loopline.tracking.entities import RunWrites
from loopline.tracking.store import ParamConflictError

if TYPE_CHECKING:
    from loopline.tracking.service import TrackingService

__all__ = ["router"]

router = APIRouter(tags=["runs"], dependencies=[Depends(caller)])

View = Literal["active", "deleted", "all"]

_WRITES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "A RunWrites batch: batch_id, new_runs, params [[run_id, key, value]], "
            "tags, deleted_tags [[run_id, key]], metrics [[run_id, key, value, "
            "timestamp, step]] (NaN and infinities as the strings 'NaN', 'Infinity', "
            "'-Infinity'), updates. A batch_id already applied is skipped."
        ),
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class RunSearch(BaseModel):
    experiment_ids: list[str | int]
    filter: str | None = Field(None, description="e.g. metrics.loss < 0.5 and params.model = 'rf'")
    order_by: list[str] | None = Field(None, description="e.g. ['metrics.loss ASC']")
    view: View = "active"
    max_results: int = 1000
    page_token: str | None = None


def parse_writes(body: bytes) -> RunWrites:
    """A RunWrites from a request body, or a 400 saying what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("the body must be a JSON object (a RunWrites batch)")
    try:
        return RunWrites.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"not a valid batch of writes: {type(exc).__name__}: {exc}",
            hint="send RunWrites.to_dict() as JSON",
        ) from None


def _write(svc: TrackingService, body: bytes) -> Response:
    batch = parse_writes(body)
    try:
        svc.write(batch)
    except ParamConflictError as exc:
        # The client's writer drops exactly the conflicting params and retries the
        # rest, so the (run_id, key) pairs travel with the error.
        answer = exc.to_dict()
        answer["conflicts"] = exc.conflicts
        return json_response(answer, 400)
    return OK()


@router.post("/writes", summary="Apply a batch of writes (idempotent)", openapi_extra=_WRITES_BODY)
async def write(request: Request, svc: ServiceDep) -> Response:
    body = await request.body()
    return await run_in_threadpool(_write, svc, body)


@router.get("/runs/{run_id}", summary="Get a run")
def get_run(run_id: str, svc: ServiceDep) -> Response:
    return json_response({"run": svc.get_run(run_id).to_dict()})


@router.post("/runs/search", summary="Search runs with a filter, an order and pages")
def search_runs(body: RunSearch, svc: ServiceDep) -> Response:
    found, token = svc.search_runs(
        [str(e) for e in body.experiment_ids],
        filter_string=body.filter or None,
        order_by=body.order_by,
        view=body.view,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return json_response({"runs": [r.to_dict() for r in found], "next_page_token": token})


@router.get("/runs/{run_id}/metric-history", summary="Every point of one metric")
def metric_history(run_id: str, svc: ServiceDep, key: str = Query(...)) -> Response:
    return json_response({"metrics": [m.to_dict() for m in svc.metric_history(run_id, key)]})


@router.delete("/runs/{run_id}", summary="Delete a run (restorable)")
def delete_run(run_id: str, svc: ServiceDep) -> Response:
    svc.delete_run(run_id)
    return OK()


@router.post("/runs/{run_id}/restore", summary="Restore a deleted run")
def restore_run(run_id: str, svc: ServiceDep) -> Response:
    svc.restore_run(run_id)
    return OK()

"""``/api/v1/pipelines``: pipeline runs, their steps, triggers and firings (read by the web UI).

==========  =====================================  ==============================================
Method      Path (under /api/v1/pipelines)         What
==========  =====================================  ==============================================
GET         /runs?pipeline=&status=&limit=         runs, newest first, with step states
GET         /runs/{run_id}                         one run: DAG, steps (states, durations, errors)
GET         /runs/{run_id}/steps/{step}/logs       a step's captured output (text)
GET         /triggers                              recorded triggers
GET         /firings?trigger_id=&limit=            trigger firings and the runs they started
==========  =====================================  ==============================================
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from loopline.errors import NotFoundError
from loopline.server.api._common import ServiceDep, json_response
from loopline.server.deps import caller

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"], dependencies=[Depends(caller)])


@router.get("/runs")
async def list_runs(
    svc: ServiceDep,
    pipeline: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    from loopline.pipelines.store import PipelineStore

    def read() -> list[dict[str, object]]:
        store = PipelineStore(svc.db)
        store.fail_dead_runs()
        found = store.list_runs(project=svc.project, pipeline=pipeline, status=status, limit=limit)
        return [r.to_dict() for r in found]

    return json_response({"runs": await run_in_threadpool(read)})


@router.get("/runs/{run_id}")
async def get_run(svc: ServiceDep, run_id: str) -> Response:
    from loopline.pipelines.store import PipelineStore

    record = await run_in_threadpool(PipelineStore(svc.db).get_run, run_id)
    return json_response(record.to_dict(logs=False))


@router.get("/runs/{run_id}/steps/{step}/logs")
async def step_logs(svc: ServiceDep, run_id: str, step: str) -> Response:
    from loopline.pipelines.store import PipelineStore

    record = await run_in_threadpool(PipelineStore(svc.db).get_run, run_id)
    for found in record.steps:
        if found.name == step:
            return PlainTextResponse(found.logs)
    raise NotFoundError(f"run {record.id} has no step {step!r}")


@router.get("/triggers")
async def triggers(svc: ServiceDep) -> Response:
    from loopline.pipelines.triggers import list_triggers

    return json_response({"triggers": await run_in_threadpool(list_triggers, svc.db)})


@router.get("/firings")
async def firings(
    svc: ServiceDep,
    # Bounded: a number past the database's integer range is no trigger, not a 500.
    trigger_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    from loopline.pipelines.triggers import list_firings

    found = await run_in_threadpool(list_firings, svc.db, trigger_id, limit)
    return json_response({"firings": found})

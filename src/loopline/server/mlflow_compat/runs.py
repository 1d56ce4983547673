"""MLflow's run endpoints: create, read, update, delete, search, metric history."""

import uuid

from fastapi import Query
from starlette.responses import Response

from loopline.errors import InvalidArgumentError
from loopline.server.mlflow_compat import messages as m
from loopline.server.mlflow_compat._edge import (
    CallerDep,
    Svc,
    area_router,
    experiment_id,
    page,
    reply,
)
from loopline.server.mlflow_compat.convert import (
    RUN_NAME_TAG,
    USER_TAG,
    metric_json,
    run_info_json,
    run_json,
    status_from_wire,
    view_from_wire,
)
from loopline.tracking.entities import NewRun, RunUpdate, RunWrites
from loopline.tracking.names import random_run_name
from loopline.tracking.store import now_ms

__all__ = ["router"]

router = area_router("/mlflow")

PARENT_TAG = "mlflow.parentRunId"


@router.post("/runs/create")
def create_run(body: m.CreateRun, svc: Svc, who: CallerDep) -> Response:
    tags = {t.key: t.value for t in body.tags}
    named = tags.get(RUN_NAME_TAG)
    if body.run_name and named and body.run_name != named:
        raise InvalidArgumentError(
            f"run_name {body.run_name!r} and tag {RUN_NAME_TAG}={named!r} disagree",
            hint="give the name once, or the same name in both",
        )
    name = body.run_name or named or random_run_name()
    tags[RUN_NAME_TAG] = name
    # With auth on the caller is who they say; else trust what the client declares.
    user = who.name if who.authenticated else body.user_id or tags.get(USER_TAG) or who.name
    run_id = uuid.uuid4().hex
    new = NewRun(
        run_id=run_id,
        experiment_id=experiment_id(body.experiment_id or "0"),
        run_name=name,
        start_time=body.start_time or now_ms(),
        user_id=user,
        parent_run_id=tags.get(PARENT_TAG) or None,
    )
    svc.write(
        RunWrites(
            batch_id=uuid.uuid4().hex,
            new_runs=[new],
            tags=[(run_id, k, v) for k, v in tags.items()],
        )
    )
    return reply({"run": run_json(svc.get_run(run_id))})


@router.get("/runs/get")
def get_run(svc: Svc, run_id: str | None = None, run_uuid: str | None = None) -> Response:
    target = m.RunRef(run_id=run_id, run_uuid=run_uuid).target()
    return reply({"run": run_json(svc.get_run(target))})


@router.post("/runs/update")
def update_run(body: m.UpdateRun, svc: Svc) -> Response:
    run_id = body.target()
    status = None if body.status is None else status_from_wire(body.status)
    update = RunUpdate(
        run_id, status=status, end_time=body.end_time, run_name=body.run_name or None
    )
    tags = [(run_id, RUN_NAME_TAG, body.run_name)] if body.run_name else []
    svc.write(RunWrites(batch_id=uuid.uuid4().hex, tags=tags, updates=[update]))
    return reply({"run_info": run_info_json(svc.get_run(run_id).info)})


@router.post("/runs/delete")
def delete_run(body: m.RunRef, svc: Svc) -> Response:
    svc.delete_run(body.target())
    return reply()


@router.post("/runs/restore")
def restore_run(body: m.RunRef, svc: Svc) -> Response:
    svc.restore_run(body.target())
    return reply()


@router.post("/runs/search")
def search_runs(body: m.SearchRuns, svc: Svc) -> Response:
    view = view_from_wire(body.run_view_type)
    if not body.experiment_ids:
        return reply({"runs": []})
    runs, token = svc.search_runs(
        [experiment_id(e) for e in body.experiment_ids],
        filter_string=body.filter or None,
        order_by=body.order_by or None,
        view=view,
        max_results=body.max_results,
        page_token=body.page_token or None,
    )
    answer: dict[str, object] = {"runs": [run_json(r) for r in runs]}
    if token:
        answer["next_page_token"] = token
    return reply(answer)


@router.get("/metrics/get-history")
def get_metric_history(
    svc: Svc,
    metric_key: str = Query(),
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> Response:
    target = m.RunRef(run_id=run_id, run_uuid=run_uuid).target()
    history = svc.metric_history(target, metric_key)
    chunk, token = page(history, max_results, page_token)
    answer: dict[str, object] = {"metrics": [metric_json(p) for p in chunk]}
    if token:
        answer["next_page_token"] = token
    return reply(answer)

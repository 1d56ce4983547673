"""MLflow's logging endpoints: metrics, params and tags, one at a time or in a batch.

Each request is one :class:`~loopline.tracking.entities.RunWrites` batch, applied
in one transaction. Params are immutable: the same value again is accepted, a
different one refused (``INVALID_PARAMETER_VALUE``), as in MLflow.
"""

import uuid
from collections.abc import Iterable

from starlette.responses import Response

from loopline.errors import LimitExceededError, NotFoundError
from loopline.server.mlflow_compat import messages as m
from loopline.server.mlflow_compat._edge import Svc, area_router, reply
from loopline.server.mlflow_compat.convert import RUN_NAME_TAG
from loopline.tracking.entities import RunUpdate, RunWrites
from loopline.tracking.service import TrackingService
from loopline.tracking.store import now_ms

__all__ = ["BATCH_LIMITS", "router"]

router = area_router("/mlflow/runs")

# MLflow's limits for one log-batch request.
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}
MAX_ENTITIES = 1000


def write(
    svc: TrackingService,
    run_id: str,
    *,
    metrics: Iterable[m.MetricIn] = (),
    params: Iterable[m.KeyValue] = (),
    tags: Iterable[m.KeyValue] = (),
) -> None:
    """Log to one run in one batch; setting ``mlflow.runName`` renames the run, as in MLflow."""
    now = now_ms()
    tag_rows = [(run_id, t.key, t.value) for t in tags]
    renames = [RunUpdate(run_id, run_name=v) for _, k, v in tag_rows if k == RUN_NAME_TAG and v]
    svc.write(
        RunWrites(
            batch_id=uuid.uuid4().hex,
            params=[(run_id, p.key, p.value) for p in params],
            tags=tag_rows,
            metrics=[
                (run_id, x.key, x.value, now if x.timestamp is None else x.timestamp, x.step)
                for x in metrics
            ],
            updates=renames[-1:],
        )
    )


@router.post("/log-metric")
def log_metric(body: m.LogMetric, svc: Svc) -> Response:
    write(svc, body.target(), metrics=[body])
    return reply()


@router.post("/log-parameter")
def log_param(body: m.LogParam, svc: Svc) -> Response:
    write(svc, body.target(), params=[m.KeyValue(key=body.key, value=body.value)])
    return reply()


@router.post("/set-tag")
def set_tag(body: m.SetTag, svc: Svc) -> Response:
    write(svc, body.target(), tags=[m.KeyValue(key=body.key, value=body.value)])
    return reply()


@router.post("/delete-tag")
def delete_tag(body: m.DeleteTag, svc: Svc) -> Response:
    run_id = body.target()
    if body.key not in svc.get_run(run_id).data.tags:
        raise NotFoundError(f"No tag with name: {body.key} in run with id {run_id}")
    svc.write(RunWrites(batch_id=uuid.uuid4().hex, deleted_tags=[(run_id, body.key)]))
    return reply()


@router.post("/log-batch")
def log_batch(body: m.LogBatch, svc: Svc) -> Response:
    counts = {"metrics": len(body.metrics), "params": len(body.params), "tags": len(body.tags)}
    for what, count in counts.items():
        if count > BATCH_LIMITS[what]:
            raise LimitExceededError(
                f"A batch logging request can contain at most {BATCH_LIMITS[what]} {what}. "
                f"Got {count} {what}.",
                hint=f"split the {what} across several requests",
            )
    if sum(counts.values()) > MAX_ENTITIES:
        raise LimitExceededError(
            f"A batch logging request can contain at most {MAX_ENTITIES} metrics, params and "
            f"tags in total. Got {sum(counts.values())}.",
            hint="split the batch across several requests",
        )
    write(svc, body.target(), metrics=body.metrics, params=body.params, tags=body.tags)
    return reply()

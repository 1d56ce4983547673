"""``/api/v1/ui``: reads shaped for the web UI, over the same services as the native API.

The UI draws from the native API wherever it can; these routes exist where a view
needs something the resource APIs do not answer in one request:

==========  ================================================  ==========================================
Method      Path (under /api/v1/ui)                           What
==========  ================================================  ==========================================
GET         /capabilities                                     which optional APIs this server answers
GET         /metric-history?run_id=&key=&max_points=&x=       one metric, downsampled with LTTB
GET         /metric-counts?run_ids=                           how many points each metric of these runs has
GET         /runs?experiment_ids=&filter=&order_by=&view=      every matching run, in a compact table
GET         /data/diff?a=&b=                                  files, rows and columns changed
GET         /data/profile?ref=                                a version's schema and profile
GET         /data/lineage?ref= or ?run_id=                    runs and models that used a version / what a run read
==========  ================================================  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.server.api._common import ServiceDep, json_response
from loopline.server.api.data import Data
from loopline.server.deps import caller
from loopline.tracking.service import TrackingService

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy.engine import Connection

__all__ = ["lttb", "router"]

router = APIRouter(prefix="/api/v1/ui", tags=["ui"], dependencies=[Depends(caller)])

MAX_POINTS = 20_000
RUN_FIELDS = (
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "user_id",
    "experiment_id",
    "parent_run_id",
    "params",
    "metrics",
    "tags",
)
MAX_RUNS = 50_000
MAX_COMPARED = 100
OPTIONAL_APIS = ("pipelines", "deployments", "monitors", "auth")
# A tag value longer than this is cut in the runs table (descriptions, notes): the
# table shows a cell, the run page shows the whole value.
TAG_CELL_CHARS = 200


def lttb(x: npt.ArrayLike, y: npt.ArrayLike, n: int) -> npt.NDArray[np.intp]:
    """Indices of the ``n`` points Largest-Triangle-Three-Buckets keeps of ``(x, y)``.

    The first and last points stay; each bucket between keeps the point forming the
    largest triangle with the previous pick and the next bucket's mean, so peaks and
    dips survive the cut. Non-finite ``y`` values count as 0 when picking.

    >>> import numpy as np
    >>> xs = np.arange(10.0)
    >>> ys = np.array([0, 1, 0, 0, 9, 0, 0, 0, -5, 0], dtype=float)
    >>> lttb(xs, ys, 4).tolist()
    [0, 4, 8, 9]
    >>> lttb(xs, ys, 20).tolist() == list(range(10))
    True
    """
    import numpy as np

    xs = np.asarray(x, dtype=np.float64)
    ys = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    size = len(xs)
    if n >= size or n < 3:
        return np.arange(size)
    # Bucket i covers [edges[i], edges[i + 1]) over the points between first and last.
    edges = (np.arange(n - 1) * ((size - 2) / (n - 2))).astype(np.intp) + 1
    edges[-1] = size - 1
    picked = np.empty(n, dtype=np.intp)
    picked[0], picked[-1] = 0, size - 1
    prev = 0
    for i in range(n - 2):
        start, stop = edges[i], edges[i + 1]
        nxt_stop = edges[i + 2] if i + 2 < n - 1 else size
        nxt_start = stop if i + 2 < n - 1 else size - 1
        mean_x = xs[nxt_start:nxt_stop].mean()
        mean_y = ys[nxt_start:nxt_stop].mean()
        area = np.abs(
            (xs[prev] - mean_x) * (ys[start:stop] - ys[prev])
            - (xs[prev] - xs[start:stop]) * (mean_y - ys[prev])
        )
        prev = start + int(np.argmax(area))
        picked[i + 1] = prev
    return picked


@router.get(
    "/capabilities", summary="Which optional APIs this server answers, and their read routes"
)
def capabilities(request: Request) -> Response:
    # The UI asks before it draws a view, so a missing API is an empty state and not a
    # failed request in the browser's console.
    found: dict[str, list[str]] = {name: [] for name in OPTIONAL_APIS}
    for route in request.app.routes:
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()):
            continue
        for name in OPTIONAL_APIS:
            prefix = f"/api/v1/{name}"
            if route.path == prefix or route.path.startswith(prefix + "/"):
                found[name].append(route.path)
    return json_response({"apis": found})


def _finite_or_none(values: Sequence[float]) -> list[float | None]:
    # JSON has no NaN or infinity; a gap in the chart says the same thing.
    return [v if math.isfinite(v) else None for v in values]


def _points(svc: TrackingService, run_id: str, key: str) -> npt.NDArray[np.float64]:
    """Every point of a metric as rows of (step, timestamp, value), in step order.

    Straight from SQL into float columns (timestamps in ms are exact in a double):
    100,000 metric objects would cost more than the query.
    """
    import numpy as np
    import sqlalchemy as sa

    from loopline.store.metadata.schema import metrics

    svc.get_run(run_id)  # a missing run is a 404, not an empty chart
    query = (
        sa.select(metrics.c.step, metrics.c.timestamp, metrics.c.value)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )
    with svc.db.read() as conn:
        rows = conn.execute(query).all()
    table = np.empty((len(rows), 3))
    table[:, 0] = np.fromiter((r[0] for r in rows), np.float64, len(rows))
    table[:, 1] = np.fromiter((r[1] for r in rows), np.float64, len(rows))
    # A stored NaN reads back as None: a float array turns it back into NaN.
    table[:, 2] = np.array([r[2] for r in rows], dtype=np.float64)
    return table


def _history(
    svc: TrackingService, run_id: str, key: str, max_points: int, x: str
) -> dict[str, Any]:
    import numpy as np

    points = _points(svc, run_id, key)
    steps, stamps, values = points[:, 0], points[:, 1], points[:, 2]
    keep = lttb(steps if x == "step" else stamps, values, max_points)
    return {
        "run_id": run_id,
        "key": key,
        "total": len(points),
        "nonfinite": int((~np.isfinite(values)).sum()),
        "steps": steps[keep].astype(np.int64).tolist(),
        "timestamps": stamps[keep].astype(np.int64).tolist(),
        "values": _finite_or_none(values[keep].tolist()),
    }


@router.get("/metric-history", summary="One metric's history, downsampled for drawing (LTTB)")
async def metric_history(
    svc: ServiceDep,
    run_id: str,
    key: str,
    max_points: Annotated[int, Query(ge=3, le=MAX_POINTS)] = 2000,
    x: Literal["step", "time"] = "step",
) -> Response:
    return json_response(await run_in_threadpool(_history, svc, run_id, key, max_points, x))


def _metric_counts(svc: TrackingService, run_ids: list[str]) -> dict[str, int]:
    import sqlalchemy as sa

    from loopline.store.metadata.schema import metrics

    for run_id in run_ids:
        svc.get_run(run_id)  # a 404 names a missing run rather than answering nothing for it
    per_run = (
        sa.select(metrics.c.key, sa.func.count().label("n"))
        .where(metrics.c.run_id.in_(run_ids))
        .group_by(metrics.c.run_id, metrics.c.key)
        .subquery()
    )
    query = sa.select(per_run.c.key, sa.func.max(per_run.c.n)).group_by(per_run.c.key)
    with svc.db.read() as conn:
        return {key: int(count) for key, count in conn.execute(query)}


@router.get("/metric-counts", summary="The most points any of these runs logged, per metric key")
async def metric_counts(
    svc: ServiceDep, run_ids: Annotated[list[str], Query(description="comma-separated")]
) -> Response:
    ids = _split(run_ids)
    if not ids or len(ids) > MAX_COMPARED:
        raise InvalidArgumentError(f"name between 1 and {MAX_COMPARED} runs")
    counts = await run_in_threadpool(_metric_counts, svc, ids)
    return json_response({"counts": counts})


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


Values = dict[str, dict[str, Any]]


def _experiment_ints(experiment_ids: list[str]) -> list[int]:
    try:
        return [int(e) for e in experiment_ids]
    except ValueError:
        raise NotFoundError(f"no experiment has the id {experiment_ids!r}") from None


def _values(
    conn: Connection, table: Any, experiments: list[int], run_ids: list[str] | None, cut: int = 0
) -> Values:
    """``{run_id: {key: value}}`` of these runs, or of every run of these experiments.

    Reading a whole experiment by an indexed join rather than by a list of 10,000 run
    ids keeps the statement small; values of runs a filter left out go unused.
    """
    import sqlalchemy as sa

    from loopline.store.metadata.schema import runs

    value = sa.func.substr(table.c.value, 1, cut) if cut else table.c.value
    query = sa.select(table.c.run_id, table.c.key, value)
    if run_ids is not None:
        query = query.where(table.c.run_id.in_(run_ids))
    else:
        query = query.join(runs, runs.c.id == table.c.run_id).where(
            runs.c.experiment_id.in_(experiments)
        )
    found: Values = {}
    for run_id, key, val in conn.execute(query):
        per_run = found.get(run_id)
        if per_run is None:
            per_run = found[run_id] = {}
        per_run[key] = val
    return found


def _search_all(
    svc: TrackingService,
    experiment_ids: list[str],
    filter_string: str | None,
    order_by: list[str],
    view: str,
    with_tags: bool,
    limit: int = MAX_RUNS,
) -> dict[str, Any]:
    import sqlalchemy as sa

    from loopline.store.metadata.schema import latest_metrics, params, tags
    from loopline.tracking.search import build_search_query

    experiments = _experiment_ints(experiment_ids)

    def search(limit: int) -> Any:
        return build_search_query(
            experiment_ids=experiments,
            filter=filter_string or None,
            order_by=order_by or None,
            view=view,  # type: ignore[arg-type]
            limit=limit,
            offset=0,
        )

    with svc.db.read() as conn:
        rows = conn.execute(search(limit + 1)).all()
        total = len(rows) if len(rows) <= limit else None
        rows = rows[:limit]
        if total is None:  # a first page: say how many match in all
            counted = sa.select(sa.func.count()).select_from(search(MAX_RUNS).subquery())
            total = int(conn.execute(counted).scalar_one())
        # A page reads its own runs' values; the whole table reads by experiment.
        ids = [row[0] for row in rows] if limit < MAX_RUNS else None
        metric_values = _values(conn, latest_metrics, experiments, ids)
        param_values = _values(conn, params, experiments, ids)
        tag_values = _values(conn, tags, experiments, ids, TAG_CELL_CHARS) if with_tags else {}
        tag_keys = _tag_keys(conn, experiments) if not with_tags else []
    table = _runs_table(rows, metric_values, param_values, tag_values)
    if not with_tags:
        table["tags"] = tag_keys  # the chooser offers them; the UI asks again with tags=true
    return {
        **table,
        "total": total,
        "truncated": total > len(rows),
        "with_tags": with_tags,
    }


def _tag_keys(conn: Connection, experiments: list[int]) -> list[str]:
    import sqlalchemy as sa

    from loopline.store.metadata.schema import runs, tags

    query = (
        sa.select(tags.c.key)
        .distinct()
        .join(runs, runs.c.id == tags.c.run_id)
        .where(runs.c.experiment_id.in_(experiments))
        .order_by(tags.c.key)
    )
    return list(conn.execute(query).scalars())


def _runs_table(
    rows: Sequence[Any], metric_values: Values, param_values: Values, tag_values: Values
) -> dict[str, Any]:
    """Runs as rows of positional values under shared column names (a fraction of the bytes).

    ``rows`` are search rows: id, experiment, name, status, start, end, user, ..., parent.
    """
    ids = [row[0] for row in rows]
    empty: dict[str, Any] = {}
    metric_keys = sorted({k for i in ids for k in metric_values.get(i, empty)})
    param_keys = sorted({k for i in ids for k in param_values.get(i, empty)})
    tag_keys = sorted({k for i in ids for k in tag_values.get(i, empty)})
    out = []
    for row in rows:
        run_id = row[0]
        m = metric_values.get(run_id, empty)
        p = param_values.get(run_id, empty)
        t = tag_values.get(run_id, empty)
        out.append(
            [
                run_id,
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                str(row[1]),
                row[8],
                [p.get(k) for k in param_keys],
                [_finite(m.get(k)) for k in metric_keys],
                [t.get(k) for k in tag_keys],
            ]
        )
    return {
        "fields": list(RUN_FIELDS),
        "params": param_keys,
        "metrics": metric_keys,
        "tags": tag_keys,
        "rows": out,
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@router.get("/runs", summary="Every run matching a search, as a compact table")
async def runs_table(
    svc: ServiceDep,
    experiment_ids: Annotated[list[str] | None, Query()] = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    view: Literal["active", "deleted", "all"] = "active",
    tags: Annotated[bool, Query(description="tag values too (else only their keys)")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS, description="a first page")] = MAX_RUNS,
) -> Response:
    ids = _split(experiment_ids)
    if not ids:
        raise InvalidArgumentError("name at least one experiment", hint="?experiment_ids=1,2")
    answer = await run_in_threadpool(
        _search_all, svc, ids, filter, order_by or [], view, tags, limit
    )
    return json_response(answer)


# -- data ------------------------------------------------------------------------------------
@router.get("/data/diff", summary="What changed from version a to version b")
def data_diff(data: Data, a: str, b: str) -> Response:
    from loopline.data.diff import diff

    return json_response({"diff": diff(data, a, b).to_dict()})


@router.get("/data/profile", summary="A version's schema and profile per tabular file")
def data_profile(data: Data, ref: str) -> Response:
    version = data.resolve(ref)
    return json_response(
        {"ref": version.ref, "schema": version.schema, "profile": version.profile()}
    )


@router.get("/data/lineage", summary="Runs and models that used a version, or what a run read")
def data_lineage(data: Data, ref: str | None = None, run_id: str | None = None) -> Response:
    from loopline.data.lineage import lineage

    return json_response({"lineage": lineage(data, ref, run_id=run_id).to_dict()})

"""``/api/v1/ui``: reads shaped for the web UI, over the same services as the native API.

The UI draws from the native API wherever it can; these routes exist where a view
needs something the resource APIs do not answer in one request:

==========  ================================================  ==========================================
Method      Path (under /api/v1/ui)                           What
==========  ================================================  ==========================================
GET         /capabilities                                     which optional APIs this server answers
GET         /metric-history?run_id=&key=&max_points=&x=       one metric, downsampled with LTTB
GET         /metric-histories?run_id=&max_points=&x=          every metric of a run, each downsampled
GET         /metric-counts?run_ids=                           how many points each metric of these runs has
GET         /runs?experiment_ids=&filter=&order_by=&view=      every matching run, in a compact table
GET         /data/diff?a=&b=                                  files, rows and columns changed
GET         /data/profile?ref=                                a version's schema and profile
GET         /data/lineage?ref= or ?run_id=                    runs and models that used a version / what a run read
GET         /deployments/{name}/traffic?hours=&buckets=       requests and latency per variant over time
==========  ================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
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
    # The OpenAPI document lists every route however routers were included (newer
    # FastAPI versions nest included routers instead of copying their routes).
    found: dict[str, list[str]] = {name: [] for name in OPTIONAL_APIS}
    for path, operations in request.app.openapi().get("paths", {}).items():
        if "get" not in operations:
            continue
        for name in OPTIONAL_APIS:
            prefix = f"/api/v1/{name}"
            if path == prefix or path.startswith(prefix + "/"):
                found[name].append(path)
    return json_response({"apis": found})


def _raw_rows(conn: Connection, query: Any) -> list[Any]:
    """The DB-API rows of ``query``: for 100,000 plain tuples SQLAlchemy's per-row
    processing costs as much as the read itself, and these columns need none."""
    result = conn.execute(query)
    try:
        rows: list[Any] = list(result.cursor.fetchall())
    finally:
        result.close()
    return rows


def _points(svc: TrackingService, run_id: str, key: str) -> npt.NDArray[np.float64]:
    """Every point of a metric as rows of (step, timestamp, value), in step order.

    Straight from SQL into float columns (timestamps in ms are exact in a double).
    Ties on a step keep their logging order: ``(run_id, key, step)`` is indexed, and
    ordering by anything but ``id`` after it would sort in a temporary tree.
    """
    import numpy as np
    import sqlalchemy as sa

    from loopline.store.metadata.schema import metrics

    svc.get_run(run_id)  # a missing run is a 404, not an empty chart
    query = (
        sa.select(metrics.c.step, metrics.c.timestamp, metrics.c.value)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.id)
    )
    with svc.db.read() as conn:
        rows = _raw_rows(conn, query)
    if not rows:
        return np.empty((0, 3))
    try:
        packed = np.fromiter(rows, dtype=[("s", "f8"), ("t", "f8"), ("v", "f8")], count=len(rows))
        return packed.view(np.float64).reshape(len(rows), 3)
    except TypeError:  # a stored NaN reads back as None: the slower path turns it into NaN
        return np.array(rows, dtype=np.float64).reshape(len(rows), 3)


def _history(
    svc: TrackingService, run_id: str, key: str, max_points: int, x: str
) -> dict[str, Any]:
    import numpy as np

    points = _points(svc, run_id, key)
    if x == "time":  # LTTB walks x in order: by time, points logged out of step order move
        points = points[np.argsort(points[:, 1], kind="stable")]
    steps, stamps, values = points[:, 0], points[:, 1], points[:, 2]
    keep = lttb(steps if x == "step" else stamps, values, max_points)
    kept = values[keep]
    return {
        "run_id": run_id,
        "key": key,
        "total": len(points),
        "nonfinite": int((~np.isfinite(values)).sum()),
        "steps": steps[keep].astype(np.int64).tolist(),
        "timestamps": stamps[keep].astype(np.int64).tolist(),
        # JSON has no NaN or infinity; a gap in the chart says the same thing.
        "values": np.where(np.isfinite(kept), kept, np.nan).tolist(),
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


def _histories(svc: TrackingService, run_id: str, max_points: int, x: str) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from loopline.store.metadata.schema import latest_metrics

    query = (
        sa.select(latest_metrics.c.key)
        .where(latest_metrics.c.run_id == run_id)
        .order_by(latest_metrics.c.key)
    )
    with svc.db.read() as conn:
        keys = list(conn.execute(query).scalars())
    return [_history(svc, run_id, key, max_points, x) for key in keys]


@router.get(
    "/metric-histories", summary="Every metric of a run, each downsampled (one request per page)"
)
async def metric_histories(
    svc: ServiceDep,
    run_id: str,
    max_points: Annotated[int, Query(ge=3, le=MAX_POINTS)] = 2000,
    x: Literal["step", "time"] = "step",
) -> Response:
    found = await run_in_threadpool(_histories, svc, run_id, max_points, x)
    return json_response({"run_id": run_id, "histories": found})


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


def _experiment_ints(experiment_ids: list[str]) -> list[int]:
    try:
        return [int(e) for e in experiment_ids]
    except ValueError:
        raise NotFoundError(f"no experiment has the id {experiment_ids!r}") from None


class Values:
    """Values of one table (params, metrics or tags) per run, in shared key order."""

    def __init__(self, rows: list[Any]) -> None:
        self.keys = sorted({row[1] for row in rows})
        index = {key: i for i, key in enumerate(self.keys)}
        width = len(self.keys)
        self.by_run: dict[str, list[Any]] = {}
        by_run = self.by_run
        for run_id, key, value in rows:
            found = by_run.get(run_id)
            if found is None:
                found = by_run[run_id] = [None] * width
            found[index[key]] = value

    @classmethod
    def none(cls) -> Values:
        return cls([])

    def only(self, run_ids: set[str]) -> Values:
        """The values of these runs, keyed only by what they have."""
        kept = [
            (run_id, key, value)
            for run_id, values in self.by_run.items()
            if run_id in run_ids
            for key, value in zip(self.keys, values, strict=True)
            if value is not None
        ]
        return Values(kept)


def _values(
    conn: Connection, table: Any, experiments: list[int], run_ids: list[str] | None, cut: int = 0
) -> Values:
    """The values of these runs, or of every run of these experiments.

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
    return Values(_raw_rows(conn, query))


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
        tag_values = (
            _values(conn, tags, experiments, ids, TAG_CELL_CHARS) if with_tags else Values.none()
        )
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
    Metric values go out as they are: orjson writes NaN and infinity as null.
    """
    ids = {row[0] for row in rows}
    tables = [
        v if len(v.by_run) <= len(ids) else v.only(ids)
        for v in (param_values, metric_values, tag_values)
    ]
    params_, metrics_, tags_ = tables
    no_params = [None] * len(params_.keys)
    no_metrics = [None] * len(metrics_.keys)
    no_tags = [None] * len(tags_.keys)
    p, m, t = params_.by_run, metrics_.by_run, tags_.by_run
    out = [
        [
            row[0],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            str(row[1]),
            row[8],
            p.get(row[0], no_params),
            m.get(row[0], no_metrics),
            t.get(row[0], no_tags),
        ]
        for row in rows
    ]
    return {
        "fields": list(RUN_FIELDS),
        "params": params_.keys,
        "metrics": metrics_.keys,
        "tags": tags_.keys,
        "rows": out,
    }


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


# -- deployments -----------------------------------------------------------------------------
MAX_BUCKETS = 500
_VARIANTS = ("primary", "canary", "shadow")


def _check_deployment(request: Request, name: str) -> None:
    """A deployment of the caller's project, or a 404 (the log folder is never read blind)."""
    from loopline.registry.service import RegistryService
    from loopline.serving.deployments import DeploymentService

    who = caller(request)
    tracking: TrackingService = request.app.state.service
    registry = RegistryService(tracking.db, tracking.blobs, user=who.name, project=who.project)
    DeploymentService(tracking.db, registry, actor=who.name, project=who.project).get(name)


def _bucket_width(span_ms: int, buckets: int) -> int:
    """A round bucket width (1 s, 5 s, 1 min, ...) that fits ``span_ms`` in ``buckets``.

    >>> _bucket_width(10 * 60_000, 60)
    10000
    >>> _bucket_width(0, 60)
    1000
    """
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
        if width * 1000 * buckets >= span_ms:
            return width * 1000
    return -(-span_ms // buckets)


def _traffic(root: Any, name: str, since_ms: int, buckets: int) -> dict[str, Any]:
    """Requests and latency per variant over time, from the deployment's prediction log.

    The log holds a row per predicted row and the request's latency on each: one
    request is its first row. Failed requests are not logged, so errors are unknown here.
    """
    from datetime import UTC, datetime

    import numpy as np
    import pyarrow.compute as pc

    from loopline import predlog

    start = datetime.fromtimestamp(since_ms / 1000, UTC)
    table = predlog.read_log(
        root, "predictions", name, start, None, ["request_id", "timestamp", "variant", "latency_ms"]
    )
    answer: dict[str, Any] = {"deployment": name, "rows": table.num_rows, "series": {}}
    if table.num_rows == 0:
        return {**answer, "requests": 0, "bucket_ms": None, "buckets": []}
    per_request = table.group_by(["request_id", "variant"]).aggregate(
        [("timestamp", "min"), ("latency_ms", "max")]
    )
    stamps = pc.cast(per_request["timestamp_min"], "int64").to_numpy() // 1000  # us -> ms
    latency = per_request["latency_ms_max"].to_numpy(zero_copy_only=False).astype(np.float64)
    variants = per_request["variant"].to_numpy(zero_copy_only=False)
    first, last = int(stamps.min()), int(stamps.max())
    width = _bucket_width(last - first + 1, buckets)
    origin = first - first % width
    index = (stamps - origin) // width
    count = int(index.max()) + 1
    answer.update(requests=len(stamps), bucket_ms=width)
    answer["buckets"] = [origin + i * width for i in range(count)]
    for variant in sorted(set(variants.tolist()), key=lambda v: (*_VARIANTS, v).index(v)):
        mine = variants == variant
        idx, lat = index[mine], latency[mine]
        order = np.argsort(idx, kind="stable")
        idx, lat = idx[order], lat[order]
        bounds = np.searchsorted(idx, np.arange(count + 1))
        p50: list[float | None] = []
        p99: list[float | None] = []
        for i in range(count):
            chunk = lat[bounds[i] : bounds[i + 1]]
            chunk = chunk[np.isfinite(chunk)]
            p50.append(float(np.percentile(chunk, 50)) if len(chunk) else None)
            p99.append(float(np.percentile(chunk, 99)) if len(chunk) else None)
        answer["series"][variant] = {
            "requests": np.diff(bounds).tolist(),
            "p50_ms": p50,
            "p99_ms": p99,
            "total": int(mine.sum()),
        }
    return answer


@router.get(
    "/deployments/{name}/traffic",
    summary="Requests and latency per variant over time, from the deployment's prediction log",
)
async def deployment_traffic(
    request: Request,
    name: str,
    hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 60,
) -> Response:
    import time

    from loopline.config import get_settings

    await run_in_threadpool(_check_deployment, request, name)
    since = int(time.time() * 1000 - hours * 3_600_000)
    root = get_settings().predictions_root
    answer = await run_in_threadpool(_traffic, root, name, since, buckets)
    return json_response({**answer, "since": since, "errors": None})

"""``/api/v1/ui``: reads shaped for the web UI, over the same services as the native API.

The UI draws from the native API wherever it can; these routes exist where a view
needs something the resource APIs do not answer in one request:

==========  ================================================  ==========================================
Method      Path (under /api/v1/ui)                           What
==========  ================================================  ==========================================
GET         /capabilities                                     which optional APIs this server answers
GET         /metric-history?run_id=&key=&max_points=&x=       one metric, downsampled with LTTB
GET         /metric-histories?run_id=&max_points=&x=          every metric of a run, each downsampled
GET         /compare-histories?run_ids=&key=&max_points=&x=   one metric of several runs, each downsampled
GET         /metric-counts?run_ids=                           how many points each metric of these runs has
GET         /runs?experiment_ids=&filter=&order_by=&view=      every matching run, in a compact table
GET         /run-keys?experiment_ids=&view=                   every param, metric and tag key of their runs
GET         /data/diff?a=&b=                                  files, rows and columns changed
GET         /data/profile?ref=                                a version's schema and profile
GET         /data/lineage?ref= or ?run_id=                    runs and models that used a version / what a run read
GET         /deployments/{name}/traffic?hours=&buckets=       requests and latency per variant over time
==========  ================================================  ==========================================
"""

from __future__ import annotations

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

__all__ = ["history_query", "lttb", "router"]

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
# Answers at least this large go out gzipped to clients that accept it.
GZIP_MIN_BYTES = 64 * 1024


def lttb(x: npt.ArrayLike, y: npt.ArrayLike, n: int) -> npt.NDArray[np.intp]:
    """Indices of the ``n`` points Largest-Triangle-Three-Buckets keeps of ``(x, y)``.

    The first and last points stay; each bucket between keeps the point forming the
    largest triangle with the previous pick and the next bucket's mean, so peaks and
    dips survive the cut. Non-finite ``y`` values count as 0 when picking.

    >>> import numpy as np
    >>> xs = np.arange(10.0)
    >>> ys = np.array([0, 1, 0, 0, 9, 0, 0, 0, -9, 0], dtype=float)
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
    # The mean of each bucket, and of the last point as the bucket after the last one.
    counts = np.append(np.diff(edges), 1)
    means_x = (np.add.reduceat(xs, edges) / counts).tolist()
    means_y = (np.add.reduceat(ys, edges) / counts).tolist()
    bounds = edges.tolist()
    picked = np.empty(n, dtype=np.intp)
    picked[0], picked[-1] = 0, size - 1
    prev = 0
    px, py = float(xs[0]), float(ys[0])
    for i in range(n - 2):
        start, stop = bounds[i], bounds[i + 1]
        # Twice the triangle's area is linear in the candidate (x, y): a*y + b*x + c.
        a, b = px - means_x[i + 1], means_y[i + 1] - py
        area = np.abs(a * ys[start:stop] + b * xs[start:stop] - (a * py + b * px))
        prev = start + int(area.argmax())
        picked[i + 1] = prev
        px, py = float(xs[prev]), float(ys[prev])
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


def history_query(run_id: str, key: str) -> Any:
    """Every point of a metric as (step, timestamp, value), in step order.

    The covering index ``metrics(run_id, key, step, timestamp, id, value)`` answers
    it without touching the table and already in this order: no sort.
    """
    import sqlalchemy as sa

    from loopline.store.metadata.schema import metrics

    return (
        sa.select(metrics.c.step, metrics.c.timestamp, metrics.c.value)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )


def _points(svc: TrackingService, run_id: str, key: str) -> npt.NDArray[np.float64]:
    """Every point of a metric as float rows (timestamps in ms are exact in a double)."""
    import numpy as np

    svc.get_run(run_id)  # a missing run is a 404, not an empty chart
    with svc.db.read() as conn:
        rows = _raw_rows(conn, history_query(run_id, key))
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


def _compare_histories(
    svc: TrackingService, run_ids: list[str], key: str, max_points: int, x: str
) -> list[dict[str, Any]]:
    """``key``'s history in each run that logged it, in the order of ``run_ids``."""
    import sqlalchemy as sa

    from loopline.store.metadata.schema import latest_metrics

    query = sa.select(latest_metrics.c.run_id).where(
        latest_metrics.c.run_id.in_(run_ids), latest_metrics.c.key == key
    )
    with svc.db.read() as conn:
        logged = set(conn.execute(query).scalars())
    for run_id in run_ids:
        if run_id not in logged:
            svc.get_run(run_id)  # a 404 names a missing run rather than leaving it out
    # _history looks each logged run up itself.
    return [_history(svc, r, key, max_points, x) for r in run_ids if r in logged]


@router.get(
    "/compare-histories",
    summary="One metric of several runs, each downsampled (the compare view's one request)",
)
async def compare_histories(
    svc: ServiceDep,
    run_ids: Annotated[list[str], Query(description="comma-separated")],
    key: str,
    max_points: Annotated[int, Query(ge=3, le=MAX_POINTS)] = 2000,
    x: Literal["step", "time"] = "step",
) -> Response:
    found = await run_in_threadpool(_compare_histories, svc, _compared(run_ids), key, max_points, x)
    return json_response({"key": key, "histories": found})


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
    counts = await run_in_threadpool(_metric_counts, svc, _compared(run_ids))
    return json_response({"counts": counts})


def _compared(run_ids: list[str]) -> list[str]:
    """The runs a comparison names (comma-separated or repeated), each once, in order."""
    ids = list(dict.fromkeys(_split(run_ids)))
    if not ids or len(ids) > MAX_COMPARED:
        raise InvalidArgumentError(f"name between 1 and {MAX_COMPARED} runs")
    return ids


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def _experiment_ints(experiment_ids: list[str]) -> list[int]:
    try:
        return [int(e) for e in experiment_ids]
    except ValueError:
        raise NotFoundError(f"no experiment has the id {experiment_ids!r}") from None


def _search_all(
    svc: TrackingService,
    experiment_ids: list[str],
    filter_string: str | None,
    order_by: list[str],
    view: str,
    with_tags: bool,
    limit: int = MAX_RUNS,
) -> bytes:
    """The JSON answer of ``GET /runs``, its rows spliced in as the database wrote them.

    A first page (``limit`` below the number of matching runs) also counts them all;
    the count reads only the runs' index, not their values.
    """
    import orjson
    import sqlalchemy as sa

    from loopline.store.metadata.schema import runs
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

    cut = TAG_CELL_CHARS if with_tags else None
    with svc.db.read() as conn:
        rows = svc.store.runs_json(conn, search(limit + 1), tag_chars=cut)
        total = len(rows) if len(rows) <= limit else None
        del rows[limit:]
        if total is None:
            matching = search(0).with_only_columns(runs.c.id).order_by(None).limit(None)
            counted = sa.select(sa.func.count()).select_from(matching.offset(None).subquery())
            total = int(conn.execute(counted).scalar_one())
    head = {
        "fields": list(RUN_FIELDS),
        "total": total,
        "truncated": total > len(rows),
        "with_tags": with_tags,
    }
    return orjson.dumps(head)[:-1] + b',"rows":[' + ",".join(rows).encode() + b"]}"


def _keys(svc: TrackingService, experiment_ids: list[str], view: str) -> dict[str, list[str]]:
    """Every param, metric and tag key the runs of these experiments have."""
    import sqlalchemy as sa

    from loopline.store.metadata.schema import latest_metrics, params, runs, tags

    chosen = sa.select(runs.c.id).where(runs.c.experiment_id.in_(_experiment_ints(experiment_ids)))
    if view != "all":
        chosen = chosen.where(runs.c.lifecycle_stage == view)
    found: dict[str, list[str]] = {}
    with svc.db.read() as conn:
        for name, table in (("params", params), ("metrics", latest_metrics), ("tags", tags)):
            query = (
                sa.select(table.c.key)
                .distinct()
                .where(table.c.run_id.in_(chosen))
                .order_by(table.c.key)
            )
            found[name] = list(conn.execute(query).scalars())
    return found


def _compressed(request: Request, body: bytes) -> Response:
    """``body`` as JSON, gzipped for clients that take it when it is large.

    Level 1: on a slow link a 10,000-run table shrinks about eightfold, and at this
    level compressing costs less than sending the difference at 100 Mbit/s.
    """
    headers = {"vary": "Accept-Encoding"}
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        import gzip

        body = gzip.compress(body, compresslevel=1)
        headers["content-encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/runs", summary="Every run matching a search, as a compact table")
async def runs_table(
    request: Request,
    svc: ServiceDep,
    experiment_ids: Annotated[list[str] | None, Query()] = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    view: Literal["active", "deleted", "all"] = "active",
    tags: Annotated[bool, Query(description="tag values too (else null)")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS, description="a first page")] = MAX_RUNS,
) -> Response:
    ids = _split(experiment_ids)
    if not ids:
        raise InvalidArgumentError("name at least one experiment", hint="?experiment_ids=1,2")
    body = await run_in_threadpool(_search_all, svc, ids, filter, order_by or [], view, tags, limit)
    return await run_in_threadpool(_compressed, request, body)


@router.get("/run-keys", summary="Every param, metric and tag key of these experiments' runs")
async def run_keys(
    svc: ServiceDep,
    experiment_ids: Annotated[list[str] | None, Query()] = None,
    view: Literal["active", "deleted", "all"] = "active",
) -> Response:
    ids = _split(experiment_ids)
    if not ids:
        raise InvalidArgumentError("name at least one experiment", hint="?experiment_ids=1,2")
    return json_response(await run_in_threadpool(_keys, svc, ids, view))


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

"""Lineage and comparison reads: a version's upstream chain, and two versions side by side.

Lineage follows the generic ``lineage`` edges: ``run -> model_version`` (output),
``dataset_version -> run`` (input), ``dataset_version -> model_version`` (a direct
edge), ``pipeline_run -> run`` and whatever a version feeds (``model_version ->
deployment``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopline.registry.entities import ComparisonRow, DatasetUse, ModelVersion, VersionLineage
from loopline.store.metadata.schema import (
    dataset_versions,
    datasets,
    latest_metrics,
    lineage,
    params,
    runs,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["comparison_rows", "version_lineage"]


def version_lineage(conn: Connection, version: ModelVersion) -> VersionLineage:
    key = ("model_version", str(version.version_id))
    run_id = (
        version.run_id
        or conn.execute(
            sa.select(lineage.c.src_id)
            .where(
                lineage.c.dst_type == key[0],
                lineage.c.dst_id == key[1],
                lineage.c.src_type == "run",
            )
            .order_by(lineage.c.id)
            .limit(1)
        ).scalar()
    )
    found = VersionLineage(
        model=version.name,
        version=version.version,
        source=version.source,
        run_id=run_id,
        logged_model_id=version.logged_model_id,
    )
    upstream: list[tuple[str, str, str, str]] = []  # (src_type, src_id, context, via)
    for src_type, src_id, context in conn.execute(
        sa.select(lineage.c.src_type, lineage.c.src_id, lineage.c.context)
        .where(lineage.c.dst_type == key[0], lineage.c.dst_id == key[1])
        .order_by(lineage.c.id)
    ):
        upstream.append((src_type, src_id, context, "direct"))
    if run_id:
        info = conn.execute(
            sa.select(runs.c.name, runs.c.experiment_id, runs.c.status).where(runs.c.id == run_id)
        ).first()
        if info is not None:
            found.run_name = info.name
            found.experiment_id = str(info.experiment_id)
            found.run_status = info.status
        for src_type, src_id, context in conn.execute(
            sa.select(lineage.c.src_type, lineage.c.src_id, lineage.c.context)
            .where(lineage.c.dst_type == "run", lineage.c.dst_id == run_id)
            .order_by(lineage.c.id)
        ):
            upstream.append((src_type, src_id, context, "run"))
    found.datasets = _datasets(conn, upstream)
    found.pipeline_runs = list(dict.fromkeys(i for t, i, _, _ in upstream if t == "pipeline_run"))
    found.downstream = [
        {"type": t, "id": i, "relation": r}
        for t, i, r in conn.execute(
            sa.select(lineage.c.dst_type, lineage.c.dst_id, lineage.c.relation)
            .where(lineage.c.src_type == key[0], lineage.c.src_id == key[1])
            .order_by(lineage.c.id)
        )
    ]
    return found


def _datasets(conn: Connection, upstream: list[tuple[str, str, str, str]]) -> list[DatasetUse]:
    wanted = [
        (int(i), ctx, via) for t, i, ctx, via in upstream if t == "dataset_version" and i.isdigit()
    ]
    if not wanted:
        return []
    rows = {
        r.id: r
        for r in conn.execute(
            sa.select(
                dataset_versions.c.id,
                datasets.c.name,
                dataset_versions.c.version,
                dataset_versions.c.digest,
            )
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.id.in_([w[0] for w in wanted]))
        )
    }
    out: list[DatasetUse] = []
    seen: set[int] = set()
    for dv_id, context, via in wanted:
        row = rows.get(dv_id)
        if row is None or dv_id in seen:
            continue
        seen.add(dv_id)
        out.append(DatasetUse(f"{row.name}@{row.version}", row.digest, context, via))
    return out


def _run_values(conn: Connection, run_id: str | None) -> tuple[dict[str, str], dict[str, float]]:
    if not run_id:
        return {}, {}
    found_params: dict[str, str] = dict(
        conn.execute(sa.select(params.c.key, params.c.value).where(params.c.run_id == run_id)).all()
    )
    metrics: dict[str, float] = {
        k: math.nan if v is None else float(v)
        for k, v in conn.execute(
            sa.select(latest_metrics.c.key, latest_metrics.c.value).where(
                latest_metrics.c.run_id == run_id
            )
        )
    }
    return found_params, metrics


def comparison_rows(conn: Connection, a: ModelVersion, b: ModelVersion) -> list[ComparisonRow]:
    """Params, then metrics, of both versions' runs, keys sorted; a missing value is None."""
    pa, ma = _run_values(conn, a.run_id)
    pb, mb = _run_values(conn, b.run_id)
    rows: list[ComparisonRow] = []
    sections: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
        ("params", pa, pb),
        ("metrics", ma, mb),
    )
    for section, left, right in sections:
        for key in sorted(set(left) | set(right)):
            rows.append(ComparisonRow(section, key, left.get(key), right.get(key)))
    return rows

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
    model_versions,
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
    found.pipeline_runs = list(dict.fromkeys(i for t, i, _, _ in upstream if t == "pipeline_run"))
    upstream += _pipeline_inputs(conn, found.pipeline_runs, run_id)
    found.datasets = _datasets(conn, upstream)
    found.downstream = [
        {"type": t, "id": i, "relation": r}
        for t, i, r in conn.execute(
            sa.select(lineage.c.dst_type, lineage.c.dst_id, lineage.c.relation)
            .where(lineage.c.src_type == key[0], lineage.c.src_id == key[1])
            .order_by(lineage.c.id)
        )
    ]
    recorded = {(d["type"], d["id"]) for d in found.downstream}
    found.downstream += [
        d for d in _deployments(conn, version) if (d["type"], d["id"]) not in recorded
    ]
    return found


def _pipeline_inputs(
    conn: Connection, pipeline_runs: list[str], run_id: str | None
) -> list[tuple[str, str, str, str]]:
    """The dataset versions other steps of the model's pipeline run read.

    A pipeline registers its model from one step (often an evaluation on hold-out
    data) while another step trained it on the training data: both belong upstream.
    """
    if not pipeline_runs:
        return []
    steps = (
        sa.select(lineage.c.dst_id)
        .where(
            lineage.c.src_type == "pipeline_run",
            lineage.c.src_id.in_(pipeline_runs),
            lineage.c.dst_type == "run",
        )
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(lineage.c.src_id, lineage.c.context)
        .where(
            lineage.c.src_type == "dataset_version",
            lineage.c.dst_type == "run",
            lineage.c.dst_id.in_(steps),
            lineage.c.dst_id != (run_id or ""),
        )
        .order_by(lineage.c.id)
    )
    return [("dataset_version", src_id, context, "pipeline") for src_id, context in rows]


def _deployments(conn: Connection, version: ModelVersion) -> list[dict[str, str]]:
    """Deployments of the model that serve this version, or did, with how.

    Read from the deployments' state and history and the alias history rather than
    from edges written at deployment time: a deployment follows an alias, and the
    registry moves aliases on its own (a pipeline's promotion, ``models alias set``).
    """
    import orjson

    from loopline.store.metadata.schema import model_alias_history, registered_models
    from loopline.store.metadata.schema_serving import deployment_history, deployments

    model = conn.execute(
        sa.select(registered_models.c.id, registered_models.c.project_id)
        .join(model_versions, model_versions.c.model_id == registered_models.c.id)
        .where(model_versions.c.id == version.version_id)
    ).first()
    if model is None:
        return []
    rows = conn.execute(
        sa.select(
            deployments.c.id, deployments.c.name, deployments.c.state, deployments.c.created_at
        )
        .where(
            deployments.c.project_id == model.project_id,
            deployments.c.model_name == version.name,
        )
        .order_by(deployments.c.name)
    ).all()
    if not rows:
        return []
    moves: dict[str, list[tuple[int, int | None]]] = {}
    for alias, to_version, at in conn.execute(
        sa.select(
            model_alias_history.c.alias,
            model_alias_history.c.to_version,
            model_alias_history.c.created_at,
        )
        .where(model_alias_history.c.model_id == model.id)
        .order_by(model_alias_history.c.created_at, model_alias_history.c.id)
    ):
        moves.setdefault(alias, []).append((int(at), to_version))
    past_states: dict[int, list[dict[str, Any]]] = {}
    for deployment_id, state in conn.execute(
        sa.select(deployment_history.c.deployment_id, deployment_history.c.state).where(
            deployment_history.c.deployment_id.in_([r.id for r in rows])
        )
    ):
        past_states.setdefault(deployment_id, []).append(orjson.loads(state))

    found: list[dict[str, str]] = []
    for row in rows:
        history = past_states.get(row.id, [])
        relations = _relations(version, orjson.loads(row.state), history, moves, row.created_at)
        if relations:
            found.append({"type": "deployment", "id": row.name, "relation": ", ".join(relations)})
    return found


def _relations(
    version: ModelVersion,
    state: dict[str, Any],
    history: list[dict[str, Any]],
    moves: dict[str, list[tuple[int, int | None]]],
    created_at: int,
) -> list[str]:
    """How one deployment (its state now and its past states) serves ``version``."""

    def holds(spec: dict[str, Any] | None) -> bool:
        return (
            spec is not None
            and spec.get("model") == version.name
            and spec.get("version") == version.version
        )

    alias, pinned = state.get("alias"), state.get("version")
    relations: list[str] = []
    if alias and alias in version.aliases:
        relations.append(f"serves @{alias}")
    elif not alias and pinned == version.version:
        relations.append("serves")
    elif _alias_held(moves.get(alias or "", []), version.version, int(created_at)) or any(
        not past.get("alias") and past.get("version") == version.version for past in history
    ):
        relations.append("served earlier")
    canary = state.get("canary")
    if holds(canary):
        relations.append(f"canary {(canary or {}).get('percent', 0):g}%")
    elif any(holds(past.get("canary")) for past in history):
        relations.append("canary earlier")
    if holds(state.get("shadow")):
        relations.append("shadow")
    return relations


def _alias_held(moves: list[tuple[int, int | None]], version: int, since: int) -> bool:
    """Whether an alias pointed at ``version`` at some time after ``since``.

    >>> _alias_held([(10, 1), (20, 2)], 1, 15), _alias_held([(10, 1), (20, 2)], 1, 25)
    (True, False)
    """
    for i, (_, to_version) in enumerate(moves):
        until = moves[i + 1][0] if i + 1 < len(moves) else None
        if to_version == version and (until is None or until > since):
            return True
    return False


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

"""Lineage between dataset versions, runs and models.

An edge ``dataset_version -> run`` (relation ``input``) says a run read a version:
:func:`loopline.data.get` records it when a run is active, :func:`log_input`
records it explicitly, with a context ("training", "evaluation"...). Models are
reached through their runs (a registered model version made by a run that read
the dataset) and through explicit ``dataset_version -> model_version`` edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.data.entities import Lineage, LineageRun, ModelUse
from loopline.data.rows import LINEAGE_TYPE
from loopline.errors import InvalidArgumentError, InvalidStateError

if TYPE_CHECKING:
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion

__all__ = ["INPUT", "active_run_id", "lineage", "log_input"]

INPUT = "input"
RUN = "run"
MODEL_VERSION = "model_version"


def active_run_id() -> str | None:
    """The id of the active run of this thread (or the main thread's), if any."""
    from loopline.tracking.fluent import active_run

    run = active_run()
    return None if run is None else run.info.run_id


def log_input(
    service: DataService,
    version: str | DatasetVersion,
    *,
    run_id: str | None = None,
    context: str = "",
) -> DatasetVersion:
    """Record that a run (default: the active one) read ``version``; returns the version."""
    resolved = service.resolve(version)
    target = run_id or active_run_id()
    if target is None:
        raise InvalidStateError(
            "no run is active to log the input to",
            hint="call it inside `with loopline.start_run():`, or pass run_id=",
        )
    if len(context) > 256:
        raise InvalidArgumentError("a lineage context is at most 256 characters")
    service.store.add_edge((LINEAGE_TYPE, str(resolved.id)), (RUN, target), INPUT, context)
    return resolved


def lineage(
    service: DataService,
    version: str | DatasetVersion | None = None,
    *,
    run_id: str | None = None,
) -> Lineage:
    """Runs and models that used ``version``; or, with ``run_id``, the versions that run read."""
    if (version is None) == (run_id is None):
        raise InvalidArgumentError("give either a dataset version or run_id=")
    server = service.server()
    if server is not None:
        from loopline.data.http import remote_lineage

        ref = None if version is None else service.resolve(version).ref
        return remote_lineage(server, ref, run_id)
    store = service.store
    if run_id is not None:
        edges = store.edges(dst=(RUN, run_id), relation=INPUT)
        ids = [int(e.src_id) for e in edges if e.src_type == LINEAGE_TYPE and e.src_id.isdigit()]
        rows = {row.id: row for row in store.by_ids(ids)}
        contexts = {int(e.src_id): e.context for e in edges if e.src_id.isdigit()}
        return Lineage(
            subject=f"run {run_id}",
            datasets=[(f"{rows[i].name}@{rows[i].version}", contexts[i]) for i in ids if i in rows],
        )
    resolved = service.resolve(version)  # type: ignore[arg-type]
    source = (LINEAGE_TYPE, str(resolved.id))
    edges = store.edges(src=source)
    runs = [
        LineageRun(e.dst_id, e.context, e.created_at)
        for e in edges
        if e.dst_type == RUN and e.relation == INPUT
    ]
    models = [ModelUse(*m) for m in store.models_of_runs([r.run_id for r in runs])]
    direct = [e.dst_id for e in edges if e.dst_type == MODEL_VERSION]
    seen = {(m.model, m.version) for m in models}
    for model, number, made_by in store.model_versions_by_ids(direct):
        if (model, number) not in seen:
            models.append(ModelUse(model, number, made_by))
    return Lineage(subject=resolved.ref, runs=runs, models=models)

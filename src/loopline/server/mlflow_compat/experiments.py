"""MLflow's experiment endpoints (``/mlflow/experiments/...``)."""

from fastapi import Query
from starlette.responses import Response

from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.server.mlflow_compat import messages as m
from loopline.server.mlflow_compat._edge import Svc, area_router, page, reply
from loopline.server.mlflow_compat._edge import experiment_id as known_experiment
from loopline.server.mlflow_compat.convert import NOTE_TAG, experiment_json, view_from_wire
from loopline.server.mlflow_compat.experiment_search import filter_experiments, sort_experiments

__all__ = ["router"]

router = area_router("/mlflow/experiments")

_MAX_RESULTS = 50_000


@router.post("/create")
def create_experiment(body: m.CreateExperiment, svc: Svc) -> Response:
    tags = {t.key: t.value for t in body.tags}
    description = tags.pop(NOTE_TAG, "")
    experiment_id = svc.create_experiment(
        body.name,
        description=description,
        tags=tags,
        artifact_location=body.artifact_location or None,
    )
    return reply({"experiment_id": experiment_id})


@router.get("/get")
def get_experiment(svc: Svc, experiment_id: str = Query()) -> Response:
    return reply(
        {"experiment": experiment_json(svc.get_experiment(known_experiment(experiment_id)))}
    )


@router.get("/get-by-name")
def get_experiment_by_name(svc: Svc, experiment_name: str = Query()) -> Response:
    found = svc.get_experiment_by_name(experiment_name)
    if found is None:
        raise NotFoundError(f"Could not find experiment with name '{experiment_name}'")
    return reply({"experiment": experiment_json(found)})


@router.post("/delete")
def delete_experiment(body: m.ExperimentRef, svc: Svc) -> Response:
    svc.delete_experiment(known_experiment(body.experiment_id))
    return reply()


@router.post("/restore")
def restore_experiment(body: m.ExperimentRef, svc: Svc) -> Response:
    svc.restore_experiment(known_experiment(body.experiment_id))
    return reply()


@router.post("/update")
def update_experiment(body: m.UpdateExperiment, svc: Svc) -> Response:
    svc.update_experiment(known_experiment(body.experiment_id), name=body.new_name)
    return reply()


@router.post("/set-experiment-tag")
def set_experiment_tag(body: m.SetExperimentTag, svc: Svc) -> Response:
    if body.key == NOTE_TAG:  # MLflow's note is loopline's description
        svc.update_experiment(known_experiment(body.experiment_id), description=body.value)
    else:
        svc.set_experiment_tag(known_experiment(body.experiment_id), body.key, body.value)
    return reply()


@router.post("/delete-experiment-tag")
def delete_experiment_tag(body: m.DeleteExperimentTag, svc: Svc) -> Response:
    exp = svc.get_experiment(known_experiment(body.experiment_id))
    if body.key == NOTE_TAG and exp.description:
        svc.update_experiment(known_experiment(body.experiment_id), description="")
    elif body.key in exp.tags:
        svc.set_experiment_tag(known_experiment(body.experiment_id), body.key, None)
    else:
        raise NotFoundError(f"No tag with name: {body.key} in experiment {body.experiment_id}")
    return reply()


@router.post("/search")
def search_experiments(body: m.SearchExperiments, svc: Svc) -> Response:
    return _search(svc, body)


@router.get("/search")
def search_experiments_get(
    svc: Svc,
    max_results: int | None = None,
    page_token: str | None = None,
    filter: str | None = None,
    order_by: list[str] = Query(default=[]),
    view_type: str | None = None,
) -> Response:
    request = m.SearchExperiments(
        max_results=max_results,
        page_token=page_token,
        filter=filter,
        order_by=order_by,
        view_type=int(view_type) if view_type and view_type.isdigit() else view_type,
    )
    return _search(svc, request)


def _search(svc: Svc, body: m.SearchExperiments) -> Response:
    max_results = body.max_results or 1000
    if not 0 < max_results <= _MAX_RESULTS:
        raise InvalidArgumentError(
            f"max_results must be between 1 and {_MAX_RESULTS}, got {max_results}"
        )
    found = svc.list_experiments(view=view_from_wire(body.view_type))
    found = sort_experiments(filter_experiments(found, body.filter), body.order_by)
    chunk, token = page(found, max_results, body.page_token)
    answer: dict[str, object] = {"experiments": [experiment_json(e) for e in chunk]}
    if token:
        answer["next_page_token"] = token
    return reply(answer)

"""MLflow 3's logged models, as far as MLflow 3 clients need them for run artifacts.

An MLflow 3 client lists and downloads a run's artifacts together with the
artifacts of models logged from that run, so it searches logged models first.
loopline keeps models in its own registry, not as MLflow logged models: the search
answers none and a lookup by id answers 404.
"""

from starlette.responses import Response

from loopline.errors import NotFoundError
from loopline.server.mlflow_compat._edge import Svc, area_router, reply

__all__ = ["router"]

router = area_router("/mlflow/logged-models")


@router.post("/search")
def search_logged_models(svc: Svc) -> Response:
    return reply({"models": []})


@router.get("/{model_id}")
def get_logged_model(model_id: str, svc: Svc) -> Response:
    raise NotFoundError(
        f"logged model {model_id!r} does not exist",
        hint="loopline keeps models in its registry: `loopline models list`",
    )

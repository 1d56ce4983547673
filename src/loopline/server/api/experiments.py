"""``/api/v1/experiments``: create, read, list, rename, delete, restore, tag.

Each route mirrors one :class:`~loopline.client.transport.Transport` method.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from loopline.errors import NotFoundError
from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import caller

__all__ = ["router"]

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[Depends(caller)])

View = Literal["active", "deleted", "all"]


class ExperimentCreate(BaseModel):
    name: str = Field(description="Unique within the project")
    description: str = ""
    tags: dict[str, str] | None = None
    artifact_location: str | None = None


class ExperimentUpdate(BaseModel):
    name: str | None = Field(None, description="New name; omitted keeps the current one")
    description: str | None = None


class ExperimentTagSet(BaseModel):
    key: str
    value: str | None = Field(description="The new value; null deletes the tag")


@router.post("", summary="Create an experiment")
def create_experiment(body: ExperimentCreate, svc: ServiceDep) -> Response:
    experiment_id = svc.create_experiment(
        body.name,
        description=body.description,
        tags=body.tags,
        artifact_location=body.artifact_location,
    )
    return json_response({"experiment_id": experiment_id})


@router.get("", summary="List experiments")
def list_experiments(
    svc: ServiceDep,
    view: View = "active",
    name_like: str | None = Query(None, description="SQL LIKE pattern on the name"),
) -> Response:
    found = svc.list_experiments(view=view, name_like=name_like)
    return json_response({"experiments": [e.to_dict() for e in found]})


@router.get("/by-name", summary="Get an experiment by name (404 when missing)")
def get_experiment_by_name(svc: ServiceDep, name: str = Query(...)) -> Response:
    found = svc.get_experiment_by_name(name)
    if found is None:
        raise NotFoundError(f"experiment {name!r} does not exist")
    return json_response({"experiment": found.to_dict()})


@router.get("/{experiment_id}", summary="Get an experiment")
def get_experiment(experiment_id: str, svc: ServiceDep) -> Response:
    return json_response({"experiment": svc.get_experiment(experiment_id).to_dict()})


@router.patch("/{experiment_id}", summary="Rename an experiment or change its description")
def update_experiment(experiment_id: str, body: ExperimentUpdate, svc: ServiceDep) -> Response:
    svc.update_experiment(experiment_id, name=body.name, description=body.description)
    return OK()


@router.delete("/{experiment_id}", summary="Delete an experiment (restorable)")
def delete_experiment(experiment_id: str, svc: ServiceDep) -> Response:
    svc.delete_experiment(experiment_id)
    return OK()


@router.post("/{experiment_id}/restore", summary="Restore a deleted experiment")
def restore_experiment(experiment_id: str, svc: ServiceDep) -> Response:
    svc.restore_experiment(experiment_id)
    return OK()


@router.post("/{experiment_id}/tags", summary="Set (or, with a null value, delete) a tag")
def set_experiment_tag(experiment_id: str, body: ExperimentTagSet, svc: ServiceDep) -> Response:
    svc.set_experiment_tag(experiment_id, body.key, body.value)
    return OK()

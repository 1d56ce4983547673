"""``/api/v1/registry``: the model registry's native REST API (what ``RegistryHttpClient`` calls).

Model names may contain ``/``, so names and versions travel as query parameters,
never as path segments.

==========  ===============================================  ================================
Method      Path (under /api/v1/registry)                    RegistryTransport method
==========  ===============================================  ================================
POST        /models                                          create_registered_model
GET         /models?filter=&order_by=&max_results=&page_token=  search_registered_models
GET         /model?name=                                     get_registered_model
PATCH       /model?name=                                     update_registered_model
DELETE      /model?name=&force=                              delete_registered_model
PUT         /model/tags?name=                                set_registered_model_tag
POST        /versions                                        register_model
GET         /versions?name=&filter=&order_by=&...            search_model_versions
GET         /version?name=&version=                          get_model_version
PATCH       /version?name=&version=                          update_model_version
DELETE      /version?name=&version=&force=                   delete_model_version
PUT         /version/tags?name=&version=                     set_model_version_tag
GET         /resolve?ref=                                    resolve
PUT         /aliases?name=&alias=                            set_alias
DELETE      /aliases?name=&alias=                            delete_alias
GET         /aliases?name=                                   list_aliases
GET         /aliases/history?name=&alias=                    alias_history
POST        /reviews?name=&version=                          review
GET         /reviews?name=&version=                          list_reviews
GET         /lineage?ref=                                    lineage
GET         /compare?name=&a=&b=                             compare_versions
GET         /files?uri=                                      model_files
GET         /files/{path}?uri=                               fetch_model_file (streamed)
POST        /logged-models                                   create_logged_model
POST        /logged-models/search                            search_logged_models
GET         /logged-models/{id}?allow_deleted=               get_logged_model
PATCH       /logged-models/{id}                              finalize_logged_model
DELETE      /logged-models/{id}                              delete_logged_model
PUT         /logged-models/{id}/tags                         set_logged_model_tags
DELETE      /logged-models/{id}/tags?key=                    delete_logged_model_tag
POST        /logged-models/{id}/params                       log_logged_model_params
PUT         /logged-models/{id}/files/{path}                 put_logged_model_file
==========  ===============================================  ================================
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.registry.service import RegistryService
from loopline.server.deps import caller, service
from loopline.store.digest import Digest
from loopline.store.paths import safe_relpath
from loopline.tracking.service import TrackingService

__all__ = ["DIGEST_HEADER", "router"]

router = APIRouter(prefix="/api/v1/registry", tags=["registry"], dependencies=[Depends(caller)])

DIGEST_HEADER = "x-loopline-digest"
_CHUNK = 1024 * 1024


def registry(svc: Annotated[TrackingService, Depends(service)]) -> RegistryService:
    """The registry service acting for the caller, over the tracking service's stores."""
    return RegistryService(svc.db, svc.blobs, user=svc.user, project=svc.project)


Registry = Annotated[RegistryService, Depends(registry)]
Name = Annotated[str, Query(description="the registered model's name")]
Version = Annotated[int, Query(ge=1, le=2**31 - 1, description="the version number")]


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _ok() -> Response:
    return Response(b"{}", media_type="application/json")


def _page(items: list[Any], token: str | None, key: str) -> Response:
    return _json({key: [i.to_dict() for i in items], "next_page_token": token})


class CreateModel(BaseModel):
    name: str
    description: str = ""
    tags: dict[str, str] | None = None
    require_approval: bool = False


class UpdateModel(BaseModel):
    description: str | None = None
    require_approval: bool | None = None
    new_name: str | None = None


class TagIn(BaseModel):
    key: str
    value: str | None = None


class Register(BaseModel):
    uri: str = Field(description="runs:/RUN/PATH, models:/m-ID or models:/NAME/VERSION")
    name: str
    tags: dict[str, str] | None = None
    description: str = ""


class UpdateVersion(BaseModel):
    description: str


class AliasIn(BaseModel):
    version: int
    protect: bool | None = None
    reason: str = ""


class ReviewIn(BaseModel):
    decision: str = Field(description="requested, approved or rejected")
    comment: str = ""


class CreateLogged(BaseModel):
    experiment_id: str
    name: str
    source_run_id: str | None = None
    model_type: str = ""
    flavor: str = ""
    params: dict[str, str] | None = None
    tags: dict[str, str] | None = None


class SearchLogged(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    order_by: list[str] | None = None
    max_results: int = 100
    page_token: str | None = None


class Finalize(BaseModel):
    status: str


class Tags(BaseModel):
    tags: dict[str, str]


class Params(BaseModel):
    params: dict[str, str]


# -- registered models --------------------------------------------------------------------
@router.post("/models", summary="Create a registered model")
def create_model(body: CreateModel, reg: Registry) -> Response:
    found = reg.create_registered_model(
        body.name,
        description=body.description,
        tags=body.tags,
        require_approval=body.require_approval,
    )
    return _json({"model": found.to_dict()})


@router.get("/models", summary="Search registered models")
def search_models(
    reg: Registry,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> Response:
    found, token = reg.search_registered_models(
        filter_string=filter, order_by=order_by, max_results=max_results, page_token=page_token
    )
    return _page(found, token, "models")


@router.get("/model", summary="Get a registered model")
def get_model(name: Name, reg: Registry) -> Response:
    return _json({"model": reg.get_registered_model(name).to_dict()})


@router.patch("/model", summary="Update or rename a registered model")
def update_model(name: Name, body: UpdateModel, reg: Registry) -> Response:
    found = reg.update_registered_model(
        name,
        description=body.description,
        require_approval=body.require_approval,
        new_name=body.new_name,
    )
    return _json({"model": found.to_dict()})


@router.delete("/model", summary="Delete a registered model and its versions")
def delete_model(name: Name, reg: Registry, force: bool = False) -> Response:
    reg.delete_registered_model(name, force=force)
    return _ok()


@router.put("/model/tags", summary="Set (or, with a null value, delete) a model tag")
def set_model_tag(name: Name, body: TagIn, reg: Registry) -> Response:
    reg.set_registered_model_tag(name, body.key, body.value)
    return _ok()


# -- versions --------------------------------------------------------------------------------
@router.post("/versions", summary="Register a model URI as a new version")
def register(body: Register, reg: Registry) -> Response:
    found = reg.register_model(body.uri, body.name, tags=body.tags, description=body.description)
    return _json({"version": found.to_dict()})


@router.get("/versions", summary="Search model versions")
def search_versions(
    reg: Registry,
    name: str | None = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> Response:
    found, token = reg.search_model_versions(
        name=name,
        filter_string=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )
    return _page(found, token, "versions")


@router.get("/version", summary="Get a model version")
def get_version(name: Name, version: Version, reg: Registry) -> Response:
    return _json({"version": reg.get_model_version(name, version).to_dict()})


@router.patch("/version", summary="Update a version's description")
def update_version(name: Name, version: Version, body: UpdateVersion, reg: Registry) -> Response:
    found = reg.update_model_version(name, version, description=body.description)
    return _json({"version": found.to_dict()})


@router.delete("/version", summary="Delete a version (refused while an alias points at it)")
def delete_version(name: Name, version: Version, reg: Registry, force: bool = False) -> Response:
    reg.delete_model_version(name, version, force=force)
    return _ok()


@router.put("/version/tags", summary="Set (or delete) a version tag")
def set_version_tag(name: Name, version: Version, body: TagIn, reg: Registry) -> Response:
    reg.set_model_version_tag(name, version, body.key, body.value)
    return _ok()


@router.get("/resolve", summary="The version NAME@REF or a models:/ URI names")
def resolve(ref: str, reg: Registry) -> Response:
    return _json({"version": reg.resolve(ref).to_dict()})


# -- aliases -----------------------------------------------------------------------------------
@router.put("/aliases", summary="Point an alias at a version (moves it atomically)")
def set_alias(name: Name, alias: str, body: AliasIn, reg: Registry) -> Response:
    found = reg.set_alias(name, alias, body.version, protect=body.protect, reason=body.reason)
    return _json({"alias": found.to_dict()})


@router.delete("/aliases", summary="Delete an alias")
def delete_alias(name: Name, alias: str, reg: Registry) -> Response:
    reg.delete_alias(name, alias)
    return _ok()


@router.get("/aliases", summary="A model's aliases")
def list_aliases(name: Name, reg: Registry) -> Response:
    return _json({"aliases": [a.to_dict() for a in reg.list_aliases(name)]})


@router.get("/aliases/history", summary="Every move of a model's aliases (or of one)")
def alias_history(name: Name, reg: Registry, alias: str | None = None) -> Response:
    return _json({"history": [h.to_dict() for h in reg.alias_history(name, alias)]})


# -- reviews, lineage, comparison -----------------------------------------------------------------
@router.post("/reviews", summary="Request a review, approve or reject a version")
def review(name: Name, version: Version, body: ReviewIn, reg: Registry) -> Response:
    found = reg.review(name, version, body.decision, comment=body.comment)
    return _json({"review": found.to_dict()})


@router.get("/reviews", summary="A version's review requests and decisions")
def list_reviews(name: Name, version: Version, reg: Registry) -> Response:
    return _json({"reviews": [r.to_dict() for r in reg.list_reviews(name, version)]})


@router.get("/lineage", summary="version -> run -> dataset versions, and what the version feeds")
def lineage(ref: str, reg: Registry) -> Response:
    return _json({"lineage": reg.lineage(ref).to_dict()})


@router.get("/compare", summary="Two versions' params and metrics side by side")
def compare(name: Name, a: str, b: str, reg: Registry) -> Response:
    return _json({"comparison": reg.compare_versions(name, a, b).to_dict()})


# -- files ---------------------------------------------------------------------------------------
@router.get("/files", summary="The files behind a model URI, with the URI pinned")
def model_files(uri: str, reg: Registry) -> Response:
    return _json({"files": reg.model_files(uri).to_dict()})


def _stream(handle: BinaryIO) -> Any:
    try:
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get("/files/{path:path}", summary="Download one file of a pinned model URI")
def fetch_file(path: str, uri: str, reg: Registry) -> Response:
    entry = reg.file_entry(uri, path)
    digest = Digest.parse(entry.digest)
    return StreamingResponse(
        _stream(reg.blobs.open(digest)),
        media_type="application/octet-stream",
        headers={"content-length": str(entry.size), DIGEST_HEADER: entry.digest},
    )


# -- MLflow 3 logged models --------------------------------------------------------------------------
@router.post("/logged-models", summary="Create a logged model")
def create_logged(body: CreateLogged, reg: Registry) -> Response:
    found = reg.create_logged_model(
        body.experiment_id,
        name=body.name,
        source_run_id=body.source_run_id,
        model_type=body.model_type,
        flavor=body.flavor,
        params=body.params,
        tags=body.tags,
    )
    return _json({"logged_model": found.to_dict()})


@router.post("/logged-models/search", summary="Search logged models")
def search_logged(body: SearchLogged, reg: Registry) -> Response:
    found, token = reg.search_logged_models(
        body.experiment_ids,
        filter_string=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return _page(found, token, "logged_models")


@router.get("/logged-models/{model_id}", summary="Get a logged model")
def get_logged(model_id: str, reg: Registry, allow_deleted: bool = False) -> Response:
    found = reg.get_logged_model(model_id, allow_deleted=allow_deleted)
    return _json({"logged_model": found.to_dict()})


@router.patch("/logged-models/{model_id}", summary="Finalize a logged model (READY or FAILED)")
def finalize_logged(model_id: str, body: Finalize, reg: Registry) -> Response:
    return _json({"logged_model": reg.finalize_logged_model(model_id, body.status).to_dict()})


@router.delete("/logged-models/{model_id}", summary="Delete a logged model")
def delete_logged(model_id: str, reg: Registry) -> Response:
    reg.delete_logged_model(model_id)
    return _ok()


@router.put("/logged-models/{model_id}/tags", summary="Set logged model tags")
def set_logged_tags(model_id: str, body: Tags, reg: Registry) -> Response:
    reg.set_logged_model_tags(model_id, body.tags)
    return _ok()


@router.delete("/logged-models/{model_id}/tags", summary="Delete a logged model tag")
def delete_logged_tag(model_id: str, key: str, reg: Registry) -> Response:
    reg.delete_logged_model_tag(model_id, key)
    return _ok()


@router.post("/logged-models/{model_id}/params", summary="Log logged model params")
def log_logged_params(model_id: str, body: Params, reg: Registry) -> Response:
    reg.log_logged_model_params(model_id, body.params)
    return _ok()


@router.put("/logged-models/{model_id}/files/{path:path}", summary="Upload a logged model file")
async def put_logged_file(model_id: str, path: str, request: Request, reg: Registry) -> Response:
    rel = safe_relpath(path)
    await run_in_threadpool(reg.get_logged_model, model_id)  # a 404 before the body is read
    fd, tmp = tempfile.mkstemp(prefix="loopline-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(reg.put_logged_model_file, model_id, rel, Path(tmp))
    finally:
        os.unlink(tmp)
    return _ok()

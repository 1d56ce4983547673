"""MLflow's model registry endpoints over loopline's registry.

Registered models (create, get, rename, update, delete, search, latest versions,
tags), model versions (create, get, update, delete, search, download URI, tags) and
aliases (set, delete, get). Versions are loopline's: immutable copies of their
source's files, so the download URI names the copy
(``mlflow-artifacts:/model-versions/<id>``), served by
:mod:`~loopline.server.mlflow_compat.logged_models`' artifact routes.

MLflow's deprecated stages are not kept: every version is in stage ``None`` and a
stage transition is refused with a hint to use aliases.
"""

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import Field
from starlette.responses import Response

from loopline.errors import InvalidArgumentError, LooplineError
from loopline.registry.entities import ModelVersion, RegisteredModel
from loopline.registry.service import RegistryService
from loopline.server.api.registry import registry
from loopline.server.mlflow_compat._edge import area_router, reply
from loopline.server.mlflow_compat.convert import key_values
from loopline.server.mlflow_compat.messages import Id, KeyValue, Message

__all__ = ["model_version_json", "registered_model_json", "router", "source_uri"]

router = area_router("/mlflow")

Reg = Annotated[RegistryService, Depends(registry)]


# -- wire forms --------------------------------------------------------------------------------
def model_version_json(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.updated_at,
        "user_id": v.created_by,
        "current_stage": "None",
        "description": v.description,
        "source": v.source,
        "run_id": v.run_id or "",
        "status": "READY" if v.status == "READY" else v.status,
        "status_message": "",
        "tags": key_values(v.tags),
        "run_link": "",
        "aliases": list(v.aliases),
        **({"model_id": v.logged_model_id} if v.logged_model_id else {}),
    }


def registered_model_json(m: RegisteredModel, latest: ModelVersion | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.created_at,
        "last_updated_timestamp": m.updated_at,
        "description": m.description,
        "tags": key_values(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }
    if latest is not None:
        body["latest_versions"] = [model_version_json(latest)]
    return body


def source_uri(source: str, model_id: str | None) -> str:
    """The loopline URI of an MLflow model version source.

    >>> source_uri("mlflow-artifacts:/1/" + "ab" * 16 + "/artifacts/model", None)
    'runs:/abababababababababababababababab/model'
    >>> source_uri("mlflow-artifacts:/1/models/m-12/artifacts", None)
    'models:/m-12'
    >>> source_uri("s3://bucket/x", "m-12")
    'models:/m-12'
    """
    if source.startswith(("runs:/", "models:/")):
        return source
    if source.startswith("mlflow-artifacts:"):
        parts = [p for p in source[len("mlflow-artifacts:") :].split("/") if p]
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            return f"models:/{parts[2]}"
        if len(parts) >= 3 and parts[2] == "artifacts":
            return f"runs:/{parts[1]}/{'/'.join(parts[3:])}"
    if model_id:
        return f"models:/{model_id}"
    raise InvalidArgumentError(
        f"cannot register {source!r}: loopline registers models whose files it stores",
        hint="log the model to a run or as a logged model through this server, then register it",
    )


def _latest(reg: RegistryService, model: RegisteredModel) -> ModelVersion | None:
    if model.latest_version is None:
        return None
    return reg.get_model_version(model.name, model.latest_version)


# -- request bodies -------------------------------------------------------------------------------
class ModelName(Message):
    name: str


class CreateModel(ModelName):
    description: str = ""
    tags: list[KeyValue] = Field(default_factory=list)


class RenameModel(ModelName):
    new_name: str


class UpdateModel(ModelName):
    description: str = ""


class ModelTag(ModelName):
    key: str
    value: str = ""


class DeleteModelTag(ModelName):
    key: str


class LatestVersions(ModelName):
    stages: list[str] = Field(default_factory=list)


class VersionRef(ModelName):
    version: Id


class CreateVersion(ModelName):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str = ""
    model_id: str | None = None


class UpdateVersion(VersionRef):
    description: str = ""


class VersionTag(VersionRef):
    key: str
    value: str = ""


class DeleteVersionTag(VersionRef):
    key: str


class SetAlias(ModelName):
    alias: str
    version: Id


class AliasRef(ModelName):
    alias: str


def _version(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"version must be an integer, got {value!r}") from None
    if number < 1:
        raise InvalidArgumentError(f"version must be a positive integer, got {number}")
    return number


# -- registered models ----------------------------------------------------------------------------
@router.post("/registered-models/create")
def create_registered_model(body: CreateModel, reg: Reg) -> Response:
    found = reg.create_registered_model(
        body.name, description=body.description, tags={t.key: t.value for t in body.tags}
    )
    return reply({"registered_model": registered_model_json(found)})


@router.get("/registered-models/get")
def get_registered_model(reg: Reg, name: str = Query()) -> Response:
    found = reg.get_registered_model(name)
    return reply({"registered_model": registered_model_json(found, _latest(reg, found))})


@router.post("/registered-models/rename")
def rename_registered_model(body: RenameModel, reg: Reg) -> Response:
    found = reg.update_registered_model(body.name, new_name=body.new_name)
    return reply({"registered_model": registered_model_json(found)})


@router.patch("/registered-models/update")
def update_registered_model(body: UpdateModel, reg: Reg) -> Response:
    found = reg.update_registered_model(body.name, description=body.description)
    return reply({"registered_model": registered_model_json(found)})


@router.delete("/registered-models/delete")
def delete_registered_model(body: ModelName, reg: Reg) -> Response:
    reg.delete_registered_model(body.name, force=True)  # MLflow deletes with the aliases
    return reply()


@router.get("/registered-models/search")
def search_registered_models(
    reg: Reg,
    filter: str | None = None,
    max_results: int = 100,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> Response:
    found, token = reg.search_registered_models(
        filter_string=filter or None,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token or None,
    )
    answer: dict[str, Any] = {
        "registered_models": [registered_model_json(m, _latest(reg, m)) for m in found]
    }
    if token:
        answer["next_page_token"] = token
    return reply(answer)


def _latest_versions(reg: RegistryService, name: str, stages: list[str]) -> Response:
    model = reg.get_registered_model(name)
    latest = _latest(reg, model)
    wanted = {s.lower() for s in stages}
    keep = latest is not None and (not wanted or "none" in wanted)
    return reply({"model_versions": [model_version_json(latest)] if keep and latest else []})


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, reg: Reg) -> Response:
    return _latest_versions(reg, body.name, body.stages)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_get(
    reg: Reg, name: str = Query(), stages: Annotated[list[str] | None, Query()] = None
) -> Response:
    return _latest_versions(reg, name, stages or [])


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, reg: Reg) -> Response:
    reg.set_registered_model_tag(body.name, body.key, body.value)
    return reply()


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: DeleteModelTag, reg: Reg) -> Response:
    reg.set_registered_model_tag(body.name, body.key, None)
    return reply()


# -- aliases ------------------------------------------------------------------------------------------
@router.post("/registered-models/alias")
def set_registered_model_alias(body: SetAlias, reg: Reg) -> Response:
    reg.set_alias(body.name, body.alias, _version(body.version))
    return reply()


@router.delete("/registered-models/alias")
def delete_registered_model_alias(body: AliasRef, reg: Reg) -> Response:
    reg.delete_alias(body.name, body.alias)
    return reply()


@router.get("/registered-models/alias")
def get_model_version_by_alias(reg: Reg, name: str = Query(), alias: str = Query()) -> Response:
    found = reg.resolve(f"{name}@{alias}") if alias != "latest" else reg.resolve(name)
    return reply({"model_version": model_version_json(found)})


# -- model versions -------------------------------------------------------------------------------------
@router.post("/model-versions/create")
def create_model_version(body: CreateVersion, reg: Reg) -> Response:
    uri = source_uri(body.source, body.model_id)
    found = reg.register_model(
        uri, body.name, tags={t.key: t.value for t in body.tags}, description=body.description
    )
    return reply({"model_version": model_version_json(found)})


@router.get("/model-versions/get")
def get_model_version(reg: Reg, name: str = Query(), version: str = Query()) -> Response:
    found = reg.get_model_version(name, _version(version))
    return reply({"model_version": model_version_json(found)})


@router.patch("/model-versions/update")
def update_model_version(body: UpdateVersion, reg: Reg) -> Response:
    found = reg.update_model_version(
        body.name, _version(body.version), description=body.description
    )
    return reply({"model_version": model_version_json(found)})


@router.delete("/model-versions/delete")
def delete_model_version(body: VersionRef, reg: Reg) -> Response:
    reg.delete_model_version(body.name, _version(body.version))
    return reply()


@router.get("/model-versions/search")
def search_model_versions(
    reg: Reg,
    filter: str | None = None,
    max_results: int = 1000,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
) -> Response:
    found, token = reg.search_model_versions(
        filter_string=filter or None,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token or None,
    )
    answer: dict[str, Any] = {"model_versions": [model_version_json(v) for v in found]}
    if token:
        answer["next_page_token"] = token
    return reply(answer)


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(
    reg: Reg, name: str = Query(), version: str = Query()
) -> Response:
    found = reg.get_model_version(name, _version(version))
    return reply({"artifact_uri": f"mlflow-artifacts:/model-versions/{found.version_id}"})


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, reg: Reg) -> Response:
    reg.set_model_version_tag(body.name, _version(body.version), body.key, body.value)
    return reply()


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: DeleteVersionTag, reg: Reg) -> Response:
    reg.set_model_version_tag(body.name, _version(body.version), body.key, None)
    return reply()


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(body: VersionRef, reg: Reg) -> Response:
    reg.get_model_version(body.name, _version(body.version))
    raise LooplineError(
        "model version stages are not supported (MLflow deprecated them)",
        hint="use aliases: MlflowClient().set_registered_model_alias(name, 'champion', version)",
        code="METHOD_NOT_ALLOWED",
    )

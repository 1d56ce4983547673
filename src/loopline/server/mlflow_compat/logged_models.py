"""MLflow 3's logged models, and the artifact proxy paths of models.

An MLflow 3 client logs a model as a *logged model*: it creates one (PENDING),
uploads its files to ``mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts``,
finalizes it (READY) and records it as an output of its run; registering it copies
its files into a model version. loopline keeps the files under the artifact root
``logged_models/<model_id>``.

Three routers:

* ``router``: ``/mlflow/logged-models`` (create, get, search, finalize, delete, tags,
  params, artifact listing) and ``/mlflow/runs/outputs``;
* ``proxy``: the artifact proxy's model paths, ``<exp>/models/<model_id>/artifacts/...``
  (logged models, upload and download) and ``model-versions/<id>/...`` (registered
  versions, download only: they are immutable). It must be mounted before the run
  artifact proxy, whose listing route it shares: listings of other paths are handed
  to :func:`loopline.server.mlflow_compat.artifacts.list_proxied`.

>>> model_target("1/models/m-abc/artifacts/MLmodel")
('logged', 'm-abc', 'MLmodel')
>>> model_target("model-versions/7")
('version', '7', '')
>>> model_target("1/" + "ab" * 16 + "/artifacts") is None
True
"""

import mimetypes
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.registry.entities import LoggedModel
from loopline.registry.service import RegistryService
from loopline.server.api.registry import registry
from loopline.server.mlflow_compat import artifacts
from loopline.server.mlflow_compat._edge import Svc, area_router, reply
from loopline.server.mlflow_compat.convert import files_json, key_values
from loopline.server.mlflow_compat.messages import Id, KeyValue, Message
from loopline.store.digest import Digest
from loopline.store.paths import safe_relpath
from loopline.tracking.store import TrackingStore

__all__ = ["logged_model_json", "model_target", "proxy", "router"]

router = area_router("/mlflow")
proxy = area_router("/mlflow-artifacts")

Reg = Annotated[RegistryService, Depends(registry)]

_STATUS_TO_WIRE = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_STATUS_FROM_WIRE = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    1: "PENDING",
    2: "READY",
    3: "FAILED",
}
_LOGGED = re.compile(r"^(\d+)/models/(m-[0-9A-Za-z]+)(?:/artifacts(?:/(.*))?)?$")
_VERSION = re.compile(r"^model-versions/(\d+)(?:/(.*))?$")
_CHUNK = 1024 * 1024


def logged_artifact_location(model: LoggedModel) -> str:
    return f"mlflow-artifacts:/{model.experiment_id}/models/{model.model_id}/artifacts"


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": logged_artifact_location(model),
        "status": _STATUS_TO_WIRE.get(model.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "model_type": model.model_type,
        "tags": key_values(model.tags),
    }
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    return {"info": info, "data": {"params": key_values(model.params), "metrics": []}}


def model_target(path: str) -> tuple[str, str, str] | None:
    """``(kind, id, file path)`` of a proxy path under a model, None for other paths."""
    clean = safe_relpath(path, allow_empty=True)
    found = _LOGGED.match(clean)
    if found:
        return "logged", found.group(2), found.group(3) or ""
    found = _VERSION.match(clean)
    if found:
        return "version", found.group(1), found.group(2) or ""
    return None


# -- request bodies ---------------------------------------------------------------------------
class CreateLogged(Message):
    experiment_id: Id
    name: str = ""
    model_type: str = ""
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class OrderBy(Message):
    field_name: str
    ascending: bool = True


class SearchLogged(Message):
    experiment_ids: list[Id] = Field(default_factory=list)
    filter: str | None = None
    max_results: int | None = None
    order_by: list[OrderBy] = Field(default_factory=list)
    page_token: str | None = None


class Finalize(Message):
    status: str | int


class TagsIn(Message):
    tags: list[KeyValue] = Field(default_factory=list)


class ParamsIn(Message):
    params: list[KeyValue] = Field(default_factory=list)


class ModelOutput(Message):
    model_id: str
    step: int = 0


class LogOutputs(Message):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


# -- logged models ---------------------------------------------------------------------------
@router.post("/logged-models")
def create_logged_model(body: CreateLogged, reg: Reg) -> Response:
    import secrets

    found = reg.create_logged_model(
        body.experiment_id,
        name=body.name or f"model-{secrets.token_hex(4)}",
        source_run_id=body.source_run_id or None,
        model_type=body.model_type,
        params={p.key: p.value for p in body.params},
        tags={t.key: t.value for t in body.tags},
    )
    return reply({"model": logged_model_json(found)})


@router.post("/logged-models/search")
def search_logged_models(body: SearchLogged, reg: Reg) -> Response:
    order = [f"{o.field_name} {'ASC' if o.ascending else 'DESC'}" for o in body.order_by]
    found, token = reg.search_logged_models(
        [str(e) for e in body.experiment_ids],
        filter_string=body.filter or None,
        order_by=order or None,
        max_results=body.max_results or 100,
        page_token=body.page_token or None,
    )
    answer: dict[str, Any] = {"models": [logged_model_json(m) for m in found]}
    if token:
        answer["next_page_token"] = token
    return reply(answer)


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, reg: Reg) -> Response:
    return reply({"model": logged_model_json(reg.get_logged_model(model_id))})


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, body: Finalize, reg: Reg) -> Response:
    status = _STATUS_FROM_WIRE.get(body.status)
    if status is None:
        raise InvalidArgumentError(
            f"invalid logged model status {body.status!r}",
            hint="use LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED",
        )
    return reply({"model": logged_model_json(reg.finalize_logged_model(model_id, status))})


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, reg: Reg) -> Response:
    reg.delete_logged_model(model_id)
    return reply()


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: TagsIn, reg: Reg) -> Response:
    reg.set_logged_model_tags(model_id, {t.key: t.value for t in body.tags})
    return reply()


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(model_id: str, tag_key: str, reg: Reg) -> Response:
    reg.delete_logged_model_tag(model_id, tag_key)
    return reply()


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: ParamsIn, reg: Reg) -> Response:
    reg.log_logged_model_params(model_id, {p.key: p.value for p in body.params})
    return reply()


@router.get("/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    model_id: str, reg: Reg, artifact_directory_path: str = ""
) -> Response:
    model = reg.get_logged_model(model_id)
    entries = _listing(reg, model.root, artifact_directory_path)
    return reply(
        {"root_uri": logged_artifact_location(model), "files": files_json(entries, basename=False)}
    )


@router.post("/runs/outputs")
def log_outputs(body: LogOutputs, svc: Svc, reg: Reg) -> Response:
    """Record models as outputs of a run (the lineage edge exists since their creation)."""
    svc.get_run(body.run_id)
    for output in body.models:
        reg.get_logged_model(output.model_id)
    return reply()


# -- the artifact proxy's model paths -------------------------------------------------------------
def _listing(reg: RegistryService, root: str, path: str) -> list[Any]:
    return TrackingStore(reg.db).list_artifacts(root, safe_relpath(path, allow_empty=True))


def _root(reg: RegistryService, kind: str, ident: str) -> tuple[str, str]:
    """(manifest root, proxy prefix) of a model target; NotFound for unknown ones."""
    if kind == "logged":
        model = reg.get_logged_model(ident)
        return model.root, f"{model.experiment_id}/models/{model.model_id}/artifacts"
    version_id = int(ident)
    if not TrackingStore(reg.db).artifact_files(f"model_versions/{version_id}"):
        raise NotFoundError(f"model version {ident} does not exist or holds no files")
    return f"model_versions/{version_id}", f"model-versions/{version_id}"


@proxy.get("/artifacts")
def list_artifacts(svc: Svc, reg: Reg, path: str = "") -> Response:
    """Listings under a model path; any other path goes to the run artifact proxy."""
    target = model_target(path)
    if target is None:
        return artifacts.list_proxied(svc, path)
    kind, ident, rel = target
    root, _ = _root(reg, kind, ident)
    entries = _listing(reg, root, rel)
    return reply({"files": files_json(entries, basename=True)})


@proxy.get("/artifacts/{experiment_id}/models/{model_id}/artifacts/{path:path}")
def download_logged(experiment_id: str, model_id: str, path: str, reg: Reg) -> Response:
    model = reg.get_logged_model(model_id)
    return _download(reg, model.root, path)


@proxy.get("/artifacts/model-versions/{version_id}/{path:path}")
def download_version(version_id: int, path: str, reg: Reg) -> Response:
    root, _ = _root(reg, "version", str(version_id))
    return _download(reg, root, path)


def _download(reg: RegistryService, root: str, path: str) -> Response:
    entry = TrackingStore(reg.db).artifact_entry(root, safe_relpath(path))
    if entry is None:
        raise NotFoundError(f"artifact {path!r} does not exist")
    handle = reg.blobs.open(Digest.parse(entry[0]))
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StreamingResponse(
        _read(handle),
        media_type="application/octet-stream" if kind.startswith("text/html") else kind,
        headers={"Content-Length": str(entry[1]), "X-Content-Type-Options": "nosniff"},
    )


def _read(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


@proxy.put("/artifacts/{experiment_id}/models/{model_id}/artifacts/{path:path}")
async def upload_logged(
    experiment_id: str, model_id: str, path: str, request: Request, reg: Reg
) -> Response:
    rel = safe_relpath(path)
    await run_in_threadpool(reg.get_logged_model, model_id)
    fd, tmp = tempfile.mkstemp(prefix="loopline-upload-")
    try:
        with os.fdopen(fd, "wb") as out:  # spooled to disk: a model file can be large
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(reg.put_logged_model_file, model_id, rel, Path(tmp))
    finally:
        os.unlink(tmp)
    return reply()

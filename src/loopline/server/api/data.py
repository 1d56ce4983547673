"""``/api/v1/data``: data versioning's REST API (what :mod:`loopline.data.http` calls).

Dataset names travel as query parameters and references as ``NAME@REF`` text, like
the registry's. A client adds a version in three steps: ``POST /blobs/missing`` with
every digest it needs, ``PUT /blobs/{digest}`` for each missing one (the manifest
too), then ``POST /versions`` naming the manifest; the server checks that the
manifest and every file it lists are stored before recording anything.

==========  ===========================================  =====================================
Method      Path (under /api/v1/data)                    What
==========  ===========================================  =====================================
GET         /datasets                                    datasets with their latest version
GET         /versions?name=                              every version of a dataset
GET         /version?ref=&manifest=                      one version (with its file list)
POST        /versions                                    record a version from a stored manifest
POST        /blobs/missing                               which of these digests are not stored
PUT         /blobs/{digest}                              upload a blob (raw body, verified)
GET         /blobs/{digest}                              download a blob (streamed)
POST        /lineage/edges                               record a lineage edge (run inputs)
==========  ===========================================  =====================================
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.data.service import DataService
from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import caller
from loopline.store.digest import ALGO, Digest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.data.version import DatasetVersion

__all__ = ["DIGEST_HEADER", "router"]

router = APIRouter(prefix="/api/v1/data", tags=["data"], dependencies=[Depends(caller)])

DIGEST_HEADER = "x-loopline-digest"
MAX_DIGESTS = 10_000
MAX_SCHEMA_BYTES = 4 << 20
_CHUNK = 1024 * 1024


def data_service(svc: ServiceDep) -> Iterator[DataService]:
    """The data service acting for the caller, over the server's database and blob store."""
    service = DataService.over(svc.db, svc.blobs, user=svc.user, project=svc.project)
    try:
        yield service
    finally:
        service.close()


Data = Annotated[DataService, Depends(data_service)]


def _version(version: DatasetVersion) -> dict[str, Any]:
    row = version.row
    return {
        **version.to_dict(),
        "id": row.id,
        "dataset_id": row.dataset_id,
        "schema_json": row.schema_json,
    }


def _digest(text: str) -> Digest:
    try:
        digest = Digest.parse(text)
    except (ValueError, LookupError) as exc:
        raise InvalidArgumentError(f"not a blob digest: {text!r}") from exc
    if digest.algo != ALGO:
        raise InvalidArgumentError(f"blobs are addressed by {ALGO}, not {digest.algo}")
    return digest


# -- datasets and versions ---------------------------------------------------------------------
@router.get("/datasets", summary="List datasets")
def list_datasets(data: Data) -> Response:
    rows = data.store.datasets(data.settings.project)
    return json_response({"datasets": [asdict(r) for r in rows]})


@router.get("/versions", summary="List the versions of a dataset")
def list_versions(data: Data, name: Annotated[str, Query()]) -> Response:
    from loopline.data.refs import check_name

    rows = data.store.versions(data.settings.project, check_name(name))
    tags = data.store.tags_for([r.id for r in rows])
    found = []
    for row in rows:
        version = data.version(row)
        version.__dict__["tags"] = tags.get(row.id, [])  # one query for all, not one each
        found.append(_version(version))
    return json_response({"versions": found})


@router.get("/version", summary="Show a version (NAME@REF), with its files on request")
def show_version(
    data: Data, ref: Annotated[str, Query()], manifest: Annotated[bool, Query()] = False
) -> Response:
    version = data.resolve(ref)
    answer: dict[str, Any] = {"version": _version(version)}
    if manifest:
        answer["manifest"] = {
            "kind": version.manifest.kind,
            "entries": [
                {"path": e.path, "size": e.size, "digest": e.digest, "executable": e.executable}
                for e in version.manifest.entries
            ],
        }
    return json_response(answer)


class NewVersionIn(BaseModel):
    name: str
    digest: str = Field(description="blake3:<hex> of the manifest blob, uploaded already")
    message: str = ""
    source: str = ""
    schema_text: str | None = Field(default=None, alias="schema_json")
    profile_digest: str | None = None
    tags: list[str] = Field(default_factory=list)


@router.post("/versions", summary="Record a version from an uploaded manifest")
def create_version(body: NewVersionIn, data: Data) -> Response:
    from loopline.data.refs import check_name, check_tag
    from loopline.data.rows import NewVersion

    name = check_name(body.name, "dataset name")
    tags = tuple(dict.fromkeys(check_tag(t) for t in body.tags))
    digest = _digest(body.digest)
    if body.schema_text is not None and len(body.schema_text) > MAX_SCHEMA_BYTES:
        raise InvalidArgumentError(f"schema_json is larger than {MAX_SCHEMA_BYTES} bytes")
    needed = [digest]
    if body.profile_digest:
        needed.append(_digest(body.profile_digest))
    _require(data, needed, "upload it first with PUT /api/v1/data/blobs/{digest}")
    manifest = data.manifest(digest)  # verified and parsed: the counts come from it
    _require(
        data,
        [e.blob for e in manifest.entries],
        "upload every file of the manifest before recording the version",
    )
    new = NewVersion(
        project=data.settings.project,
        name=name,
        digest=str(digest),
        kind=manifest.kind,
        file_count=len(manifest),
        total_size=manifest.total_size,
        user=data.settings.user,
        message=body.message,
        source=body.source,
        schema_json=body.schema_text,
        profile_digest=body.profile_digest or None,
        tags=tags,
    )
    row, created = data.record(new)
    version = data.version(row, unchanged=not created)
    return json_response({"version": _version(version), "created": created})


def _require(data: DataService, digests: list[Digest], hint: str) -> None:
    absent = _missing(data, digests)
    if absent:
        shown = ", ".join(sorted(str(d) for d in absent)[:5])
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise InvalidArgumentError(f"blobs not stored on the server: {shown}{more}", hint=hint)


def _missing(data: DataService, digests: list[Digest]) -> set[Digest]:
    """Digests stored neither as blobs nor in a pack of the server's store."""
    absent = data.blobs.missing(digests)
    if absent:
        from loopline.data.packs import PackIndex

        packs = PackIndex.load(data.blobs)
        located = {d: w[0] for d in absent if (w := packs.locate(d.hex)) is not None}
        if located:
            gone = data.blobs.missing(Digest(ALGO, p) for p in set(located.values()))
            absent -= {d for d, pack in located.items() if Digest(ALGO, pack) not in gone}
    return absent


# -- blobs -------------------------------------------------------------------------------------
class DigestsIn(BaseModel):
    digests: list[str] = Field(max_length=MAX_DIGESTS)


@router.post("/blobs/missing", summary="Which of these blobs the server lacks")
def missing_blobs(body: DigestsIn, data: Data) -> Response:
    wanted = [_digest(d) for d in body.digests]
    return json_response({"missing": sorted(str(d) for d in _missing(data, wanted))})


@router.put("/blobs/{digest}", summary="Upload a blob (raw body; verified against the digest)")
async def put_blob(digest: str, request: Request, data: Data) -> Response:
    claimed = _digest(digest)
    fd, tmp = tempfile.mkstemp(prefix="loopline-data-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(_store_upload, data, Path(tmp), claimed)
    finally:
        os.unlink(tmp)
    return OK()


def _store_upload(data: DataService, path: Path, claimed: Digest) -> None:
    from loopline.data._fs import hash_path
    from loopline.errors import IntegrityError

    actual = hash_path(os.fspath(path), path.stat().st_size)
    if actual != claimed.hex:
        raise IntegrityError(
            f"the uploaded content hashes to {ALGO}:{actual}, not {claimed}; nothing was stored",
            hint="the file changed while it was sent, or the transfer was damaged: retry",
        )
    data.blobs.put_file(path, digest=claimed)


@router.get("/blobs/{digest}", summary="Download a blob (streamed)")
def get_blob(digest: str, data: Data) -> Response:
    blob = _digest(digest)
    headers = {DIGEST_HEADER: str(blob)}
    try:
        handle = data.blobs.open(blob)
    except NotFoundError:
        from loopline.data.packs import PackIndex, read_packed

        where = PackIndex.load(data.blobs).locate(blob.hex)
        if where is None:
            raise
        content = read_packed(data.blobs, *where)
        return Response(content, media_type="application/octet-stream", headers=headers)

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


# -- lineage -------------------------------------------------------------------------------------
class EdgeIn(BaseModel):
    src: tuple[str, str]
    dst: tuple[str, str]
    relation: str
    context: str = ""


@router.post("/lineage/edges", summary="Record a lineage edge (a run read a dataset version)")
def add_edge(body: EdgeIn, data: Data) -> Response:
    created = data.store.add_edge(body.src, body.dst, body.relation, body.context)
    return json_response({"created": created})

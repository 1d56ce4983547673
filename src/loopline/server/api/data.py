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
POST        /blobs/batch                                 upload many small blobs (frames, verified)
POST        /blobs/fetch                                 download many small blobs (frames)
POST        /lineage/edges                               record a lineage edge (run inputs)
GET         /lineage?ref= | ?run_id=                     runs and models of a version; a run's inputs
POST        /tags                                        point a tag at a version (NAME@REF)
GET         /tags?name=                                  every move of a dataset's tags
POST        /gc                                          remove unreferenced blobs (administrators)
POST        /verify                                      rehash a version's blobs (or, for
                                                         administrators, the whole store)
GET         /uploads/{digest}                            how much of a chunked upload is stored
PUT         /uploads/{digest}?offset=                    append a chunk to a chunked upload
POST        /uploads/{digest}/complete                   verify a chunked upload, store it as a blob
==========  ===========================================  =====================================

Small blobs travel in batches, both ways: a body of *frames*, each
``"DIGEST SIZE\\n"`` then the content (:mod:`loopline.data.frames`), so 20,000 files
of a few KiB take a few dozen requests instead of 20,000. ``POST /blobs/batch``
verifies every frame before storing it and answers ``{"stored": [...]}``;
``POST /blobs/fetch`` with ``{"digests": [...]}`` answers the frames of those it
holds (at most :data:`BATCH_MAX_BLOB` bytes each), and the client verifies them.

Blobs larger than the request limit go up in chunks: ``GET /uploads/{digest}``
says how many bytes the server holds already (0 for a new upload) and the chunk
size to send; each ``PUT`` appends the chunk starting at ``offset`` (a chunk at the
wrong offset is refused with the right one); ``complete`` hashes what arrived and
stores the blob only when it matches the digest. The partial file is kept by
digest, not by client, so an upload interrupted by anything (a dropped connection,
a killed client, a restarted server) resumes where it stopped, and two clients
sending the same content cannot disagree: the same digest means the same bytes at
every offset. Partial uploads untouched for :data:`STALE_UPLOAD_SECONDS` are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.data.frames import MEDIA_TYPE as FRAMES_MEDIA_TYPE
from loopline.data.service import DataService
from loopline.errors import (
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import auth_enabled, caller, principal
from loopline.store.digest import ALGO, Digest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore

__all__ = ["DIGEST_HEADER", "router"]

router = APIRouter(prefix="/api/v1/data", tags=["data"], dependencies=[Depends(caller)])

DIGEST_HEADER = "x-loopline-digest"
MAX_DIGESTS = 10_000
MAX_SCHEMA_BYTES = 4 << 20
_CHUNK = 1024 * 1024
UPLOAD_CHUNK = 64 << 20
"""The chunk size offered to clients (less when the request limit is smaller)."""
STALE_UPLOAD_SECONDS = 7 * 24 * 3600.0
BATCH_MAX_BLOB = 16 << 20
"""Largest blob a batch carries, either way (memory holds one at a time)."""
BATCH_GROUP = 4 << 20
"""Bytes of verified blobs of an uploaded batch stored together, off the event loop."""


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


# -- batches of small blobs ----------------------------------------------------------------------
@router.post("/blobs/batch", summary="Upload many small blobs in one body of frames (verified)")
async def put_batch(request: Request, data: Data) -> Response:
    """Read the frames as they arrive, store each verified blob, answer which were stored.

    Memory holds one frame and a group of at most :data:`BATCH_GROUP` bytes waiting
    to be stored. A blob whose content does not match its digest is not stored; the
    others are, and the request fails with an :class:`~loopline.errors.IntegrityError`
    naming the refused ones (after reading the whole body, so the client reads the answer).
    """
    from loopline.data.frames import FrameReader

    reader = FrameReader(max_frame=BATCH_MAX_BLOB)
    stored: list[str] = []
    corrupt: list[str] = []
    pending: list[tuple[Digest, bytes]] = []
    held = 0
    async for chunk in request.stream():
        for text, content in reader.feed(chunk):
            if len(stored) + len(corrupt) + len(pending) >= MAX_DIGESTS:
                raise InvalidArgumentError(f"a batch holds at most {MAX_DIGESTS} blobs")
            pending.append((_digest(text), content))
            held += len(content)
            if held >= BATCH_GROUP:
                await run_in_threadpool(_store_verified, data, pending, stored, corrupt)
                pending, held = [], 0
    reader.finish()
    if pending:
        await run_in_threadpool(_store_verified, data, pending, stored, corrupt)
    if corrupt:
        from loopline.errors import IntegrityError

        shown = ", ".join(corrupt[:5]) + (
            f" and {len(corrupt) - 5} more" if len(corrupt) > 5 else ""
        )
        raise IntegrityError(
            f"{len(corrupt)} blob(s) of the batch do not hash to their digest and were not "
            f"stored: {shown}; the other {len(stored)} were stored",
            hint="the files changed while they were sent, or the transfer was damaged: retry",
        )
    return json_response({"stored": stored})


def _store_verified(
    data: DataService, frames: list[tuple[Digest, bytes]], stored: list[str], corrupt: list[str]
) -> None:
    """Hash each frame, store those that match their digest (in parallel on remote stores)."""
    from loopline.data._fs import hash_bytes

    good: list[bytes] = []
    for digest, content in frames:
        if hash_bytes(content) == digest.hex:
            good.append(content)
            stored.append(str(digest))
        else:
            corrupt.append(str(digest))
    blobs = data.blobs
    if getattr(blobs, "object_path", None) is not None or len(good) < 2:
        for content in good:
            blobs.put_bytes(content)
        return
    from concurrent.futures import ThreadPoolExecutor

    # An object store answers each put in milliseconds: overlap them.
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="loopline-batch") as pool:
        for _ in pool.map(blobs.put_bytes, good):
            pass


@router.post(
    "/blobs/fetch",
    summary="Download many small blobs as one body of frames",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One frame per stored blob, in order",
            "content": {FRAMES_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def get_batch(body: DigestsIn, data: Data) -> Response:
    """Frames of the stored blobs among ``digests``, in order; the others are left out.

    Blobs not stored, and blobs larger than :data:`BATCH_MAX_BLOB`, have no frame:
    the client fetches those one by one (``GET /blobs/{digest}``). Nothing is
    verified here; the client checks every frame against its digest.
    """
    wanted = [_digest(d) for d in body.digests]
    return StreamingResponse(_frames(data.blobs, wanted), media_type=FRAMES_MEDIA_TYPE)


def _frames(blobs: BlobStore, wanted: list[Digest]) -> Iterator[bytes]:
    """Frames for ``wanted``, yielded about :data:`_CHUNK` bytes at a time."""
    from loopline.data.frames import frame_header
    from loopline.data.packs import PackIndex, read_packed

    packs: PackIndex | None = None
    out = bytearray()
    for digest in wanted:
        content: bytes | None = None
        try:
            with blobs.open(digest) as handle:
                content = handle.read(BATCH_MAX_BLOB + 1)
        except NotFoundError:
            if packs is None:
                packs = PackIndex.load(blobs)
            where = packs.locate(digest.hex)
            if where is not None and where[2] <= BATCH_MAX_BLOB:
                with contextlib.suppress(NotFoundError):
                    content = read_packed(blobs, *where)
        if content is None or len(content) > BATCH_MAX_BLOB:
            continue
        out += frame_header(str(digest), content)
        out += content
        if len(out) >= _CHUNK:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


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


@router.get("/lineage", summary="Runs and models that used a version, or the versions a run read")
def get_lineage(
    data: Data,
    ref: Annotated[str | None, Query()] = None,
    run_id: Annotated[str | None, Query()] = None,
) -> Response:
    from loopline.data.lineage import lineage

    return json_response(lineage(data, ref, run_id=run_id).to_dict())


# -- tags ------------------------------------------------------------------------------------------
class TagIn(BaseModel):
    ref: str = Field(description="NAME@REF of the version the tag should point at")
    tag: str


@router.post("/tags", summary="Point a tag at a version (moving it; every move is kept)")
def move_tag(body: TagIn, data: Data) -> Response:
    from loopline.data.refs import check_tag, parse_ref

    version = data.resolve(body.ref)
    move = data.store.move_tag(
        data.settings.project, parse_ref(version.ref), check_tag(body.tag), data.settings.user
    )
    return json_response(asdict(move))


@router.get("/tags", summary="Every move of a dataset's tags, oldest first")
def tag_history(data: Data, name: Annotated[str, Query()]) -> Response:
    from loopline.data.refs import check_name

    history = data.store.tag_history(data.settings.project, check_name(name))
    keys = ("tag", "from_version", "to_version", "actor", "created_at")
    return json_response({"history": [dict(zip(keys, move, strict=True)) for move in history]})


# -- store maintenance -------------------------------------------------------------------------
class GcIn(BaseModel):
    dry_run: bool = False
    grace_seconds: float = Field(default=3600.0, ge=0)


def _require_admin(request: Request, what: str, hint: str) -> None:
    """The blob store is shared by every project: whole-store work is for administrators."""
    if auth_enabled(request):
        who = principal(request)
        if who is None or not who.is_admin:
            raise PermissionDeniedError(f"only a server administrator may {what}", hint=hint)


@router.post("/gc", summary="Delete blobs no version references (server administrators)")
def collect(body: GcIn, data: Data, request: Request) -> Response:
    from loopline.data.gc import gc

    _require_admin(request, "collect the server's blobs", "ask an administrator")
    result = gc(data, dry_run=body.dry_run, grace_seconds=body.grace_seconds)
    return json_response(result.to_dict())


class VerifyIn(BaseModel):
    ref: str | None = Field(default=None, description="only this version's blobs (NAME@REF)")


@router.post("/verify", summary="Rehash stored blobs; report corrupt and missing ones")
def verify_store(body: VerifyIn, data: Data, request: Request) -> Response:
    from loopline.data.verify import verify

    if body.ref is None:  # the whole store names every project's datasets
        _require_admin(
            request,
            "verify the whole store",
            "verify one of your versions: `loopline data verify NAME@REF`",
        )
    return json_response(verify(data, body.ref).to_dict())


# -- chunked uploads -------------------------------------------------------------------------
def _uploads_dir(data: DataService) -> Path:
    """Where partial uploads live: beside a local store's objects (same disk), else in temp."""
    root = getattr(data.blobs, "root", None)
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    folder = base / "uploads" if root is not None else base / "loopline-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _chunk_size(request: Request) -> int:
    """Half the request limit (headers and retries need room), at most :data:`UPLOAD_CHUNK`."""
    limit: int | None = getattr(request.app.state, "max_body_bytes", None)
    if not limit:  # no limit
        return UPLOAD_CHUNK
    return max(64 << 10, min(UPLOAD_CHUNK, limit // 2))


@contextlib.contextmanager
def _locked_part(data: DataService, digest: Digest) -> Iterator[int]:
    """The partial file of an upload, open for appending and locked against other requests."""
    folder = _uploads_dir(data)
    _sweep_stale(folder)
    fd = os.open(folder / f"{digest.hex}.part", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _sweep_stale(folder: Path) -> None:
    cutoff = time.time() - STALE_UPLOAD_SECONDS
    for entry in os.scandir(folder):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)


@router.get("/uploads/{digest}", summary="How much of a chunked upload the server holds")
def upload_state(digest: str, data: Data, request: Request) -> Response:
    claimed = _digest(digest)
    stored = not _missing(data, [claimed])
    offset = 0
    if not stored:
        part = _uploads_dir(data) / f"{claimed.hex}.part"
        with contextlib.suppress(FileNotFoundError):
            offset = part.stat().st_size
    return json_response({"offset": offset, "stored": stored, "chunk_size": _chunk_size(request)})


@router.put("/uploads/{digest}", summary="Append a chunk (raw body) at offset to a chunked upload")
async def upload_chunk(
    digest: str, offset: Annotated[int, Query(ge=0, le=2**63 - 1)], request: Request, data: Data
) -> Response:
    claimed = _digest(digest)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
    end = await run_in_threadpool(_append, data, claimed, offset, bytes(body))
    return json_response({"offset": end})


def _append(data: DataService, claimed: Digest, offset: int, body: bytes) -> int:
    with _locked_part(data, claimed) as fd:
        size = os.fstat(fd).st_size
        if offset != size:
            raise InvalidStateError(
                f"the upload of {claimed} holds {size} bytes; a chunk at {offset} does not fit",
                hint=f"send the chunk that starts at byte {size}",
            )
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        return size + len(body)


@router.post("/uploads/{digest}/complete", summary="Verify a chunked upload and store the blob")
def complete_upload(digest: str, data: Data) -> Response:
    from loopline.errors import IntegrityError

    claimed = _digest(digest)
    with _locked_part(data, claimed):
        part = _uploads_dir(data) / f"{claimed.hex}.part"
        if not _missing(data, [claimed]):  # stored meanwhile (another client, an earlier try)
            part.unlink()
            return OK()
        try:
            _store_upload(data, part, claimed)
        except IntegrityError:
            part.unlink()  # damaged: the next attempt starts over
            raise
        part.unlink()
    return OK()

"""``/api/v1/runs/{run_id}/artifacts``: upload (raw body), list, download (streamed).

Uploads stream to a temporary file, never into memory, then enter the blob store;
downloads stream the blob and carry its digest (``X-Loopline-Digest``) so the
client can verify what it received.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopline.server.api._common import OK, ServiceDep, json_response
from loopline.server.deps import caller
from loopline.store.paths import safe_relpath
from loopline.tracking.entities import ArtifactFile

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.tracking.service import TrackingService

__all__ = ["DIGEST_HEADER", "router"]

router = APIRouter(tags=["artifacts"], dependencies=[Depends(caller)])

DIGEST_HEADER = "x-loopline-digest"
_CHUNK = 1024 * 1024
_RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    summary="Upload a file as an artifact (raw body)",
    openapi_extra=_RAW_BODY,
)
async def upload_artifact(run_id: str, path: str, request: Request, svc: ServiceDep) -> Response:
    rel = safe_relpath(path)
    await run_in_threadpool(svc.get_run, run_id)  # a 404 before the body is read
    fd, tmp = tempfile.mkstemp(prefix="loopline-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            pending: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                pending.append(chunk)
                size += len(chunk)
                if size >= _CHUNK:
                    await run_in_threadpool(out.writelines, pending)
                    pending, size = [], 0
            out.writelines(pending)
        await run_in_threadpool(svc.put_artifact, run_id, rel, Path(tmp))
    finally:
        os.unlink(tmp)
    return OK()


def _artifact_files(svc: TrackingService, run_id: str, path: str) -> list[ArtifactFile]:
    """Every file at or below ``path`` (for downloading a folder in one listing)."""
    svc.get_run(run_id)
    files = svc.store.artifact_files(f"runs/{run_id}", path)
    return [ArtifactFile(rel, False, size, digest) for rel, digest, size in files]


@router.get("/runs/{run_id}/artifacts", summary="List artifacts under a path")
def list_artifacts(
    run_id: str,
    svc: ServiceDep,
    path: str = "",
    recursive: bool = Query(False, description="every file below path, with digests"),
) -> Response:
    if recursive:
        found = _artifact_files(svc, run_id, safe_relpath(path, allow_empty=True))
    else:
        found = svc.list_artifacts(run_id, path)
    return json_response({"files": [f.to_dict() for f in found]})


def _stream(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get("/runs/{run_id}/artifacts/{path:path}", summary="Download one artifact file")
def download_artifact(run_id: str, path: str, svc: ServiceDep) -> Response:
    digest, size = svc.artifact_digest(run_id, path)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StreamingResponse(
        _stream(svc.blobs.open(digest)),
        media_type=media_type,
        headers={"content-length": str(size), DIGEST_HEADER: str(digest)},
    )

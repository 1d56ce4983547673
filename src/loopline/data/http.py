"""Data versioning through a ``loopline server``: the client side of ``/api/v1/data``.

When the tracking URI names a server, :class:`~loopline.data.service.DataService`
swaps its two stores for these:

* :class:`HttpBlobStore`, a :class:`~loopline.store.blobs.BlobStore` over the
  server's blob endpoints (bulk ``missing``, raw ``PUT`` upload, streamed ``GET``
  download verified against the digest);
* :class:`HttpDataStore`, the :class:`~loopline.data.store.DataStore` methods the
  SDK needs (latest, record, resolve, versions, datasets, tags and their history,
  lineage edges) over the version endpoints;
* :func:`remote_lineage`, :func:`remote_gc` and :func:`remote_verify`, which the
  server answers whole (they read its database and its whole blob store).

Blobs larger than the server's request limit go up in chunks that resume after an
interruption (:meth:`DataHttpClient.put_chunked`).

``add`` hashes files here (with the local state cache), asks the server which blobs
it lacks, uploads only those in parallel (:func:`upload`), then the manifest, then
records the version: the server checks that every blob is there first. Files up to
:data:`BATCH_FILE` go up in batches of frames (:mod:`loopline.data.frames`), many
per request, and a checkout fetches them the same way; larger ones have a request
of their own (or several, in chunks).

Every call carries the caller's identity (``X-Loopline-User``/``X-Loopline-Project``,
a bearer token) and error bodies become the matching :class:`~loopline.errors.LooplineError`.
Reads and blob uploads (content-addressed: repeating one is harmless) are retried on
network errors and 5xx; recording a version only when the connection could not be made.

>>> c = DataHttpClient("http://127.0.0.1:5000/", user="ada")
>>> c.base_url, c.headers["x-loopline-user"]
('http://127.0.0.1:5000', 'ada')
>>> c.close()
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from loopline.client.session import ApiSession
from loopline.data.rows import VERSION_COLUMNS, NewVersion, VersionRow
from loopline.data.store import DatasetRow, DataStore, TagMove
from loopline.errors import (
    IntegrityError,
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
)
from loopline.store.blobs import BlobStore
from loopline.store.digest import ALGO, Digest, Hasher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    import httpx

    from loopline.config import Settings
    from loopline.data.entities import GcResult, Lineage, VerifyReport
    from loopline.data.progress import Progress
    from loopline.data.refs import Ref
    from loopline.data.scan import ScannedFile
    from loopline.data.service import DataService
    from loopline.store.metadata import Database

__all__ = [
    "API",
    "DataHttpClient",
    "HttpBlobStore",
    "HttpDataStore",
    "remote_gc",
    "remote_lineage",
    "remote_verify",
    "send_batches",
    "transfer_batches",
    "upload",
]

API = "/api/v1/data"
DIGEST_HEADER = "x-loopline-digest"
MISSING_BATCH = 5000
"""Digests per ``POST /blobs/missing`` call."""
CHUNKED_ABOVE = 1 << 20
"""Files larger than this ask the server how to upload them (whole, or in chunks)."""
BATCH_FILE = 1 << 20
"""Blobs up to this size travel in batches (``POST /blobs/batch`` and ``/blobs/fetch``)."""
BATCH_BYTES = 8 << 20
"""Bytes per batch: enough to amortise a request, small enough to keep several in flight."""
BATCH_COUNT = 1000
"""Blobs per batch."""
_CHUNK = 1024 * 1024
_MAX_FRAME = 16 << 20
"""Largest frame accepted in a fetched batch (the server's own limit): a blob whose
stored size differs from the manifest's still arrives, and is named as corrupt."""


class DataHttpClient(ApiSession):
    """The ``/api/v1/data`` endpoints of one server, over one keep-alive connection pool."""

    server_hint = "is this URL a loopline server with the data API?"

    prefix = API
    batches = True
    """Whether to send and ask for batches (False once the server has shown it cannot)."""
    batch_bytes = BATCH_BYTES
    """Largest batch body to send (lowered when the server's request limit is smaller)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DataHttpClient:
        return cls(
            str(settings.tracking_uri),
            token=settings.token,
            user=settings.user,
            project=settings.project,
        )

    def call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One JSON call; its decoded answer."""
        return self._call(method, url, params=params, json=json, idempotent=idempotent)

    # -- blobs -------------------------------------------------------------------------------
    def missing(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` (``blake3:<hex>``) the server lacks."""
        found: set[str] = set()
        for start in range(0, len(digests), MISSING_BATCH):
            batch = list(digests[start : start + MISSING_BATCH])
            answer = self.call("POST", "/blobs/missing", json={"digests": batch}, idempotent=True)
            found.update(answer["missing"])
        return found

    def put_blob(self, digest: Digest, source: Path | bytes) -> None:
        """Upload a blob (the server verifies it against ``digest``).

        Files larger than :data:`CHUNKED_ABOVE` go through :meth:`put_chunked` when
        the server's chunk size is smaller than they are.
        """
        if isinstance(source, Path):
            size = os.path.getsize(source)
            if size > CHUNKED_ABOVE:
                state = self.upload_state(digest)
                if state["stored"]:
                    return
                if size > state["chunk_size"] or state["offset"]:
                    self.put_chunked(digest, source, size, state)
                    return
        headers = {"content-type": "application/octet-stream"}

        def attempt() -> None:
            if isinstance(source, bytes):
                self._check(self._http.put(f"/blobs/{digest}", content=source, headers=headers))
                return
            with open(source, "rb") as handle:  # reopened per try, streamed
                self._check(
                    self._http.put(f"/blobs/{digest}", content=_chunks(handle), headers=headers)
                )

        self._retrying(attempt, idempotent=True)

    def put_batch(self, blobs: Sequence[tuple[Digest, bytes]]) -> None:
        """Upload small blobs in one request (the server verifies each against its digest).

        A batch over the server's request limit is split in halves (and later
        batches kept that small); a server without the batch API gets one request
        per blob.
        """
        if len(blobs) == 1 or not self.batches:
            for digest, content in blobs:
                self.put_blob(digest, content)
            return
        from loopline.data.frames import MEDIA_TYPE, frame_header

        parts: list[bytes] = []
        for digest, content in blobs:
            parts += (frame_header(str(digest), content), content)
        body = b"".join(parts)
        if len(body) > self.batch_bytes:
            self._split(blobs)
            return
        try:
            self._post_batch(blobs, body, MEDIA_TYPE)
        except LimitExceededError:
            self.batch_bytes = max(64 << 10, len(body) // 2)
            self._split(blobs)
        except _NoBatchApi:
            self.batches = False  # an older server: one request per blob
            self.put_batch(blobs)

    def _post_batch(self, blobs: Sequence[tuple[Digest, bytes]], body: bytes, media: str) -> None:
        """One ``POST /blobs/batch``; checks that the server stored every blob sent."""
        headers = {"content-type": media}
        answer = self._retrying(
            lambda: _answer(
                self._check_batch(self._http.post("/blobs/batch", content=body, headers=headers))
            ),
            idempotent=True,  # content-addressed: storing a blob twice is harmless
        )
        unstored = {str(d) for d, _ in blobs} - set(answer.get("stored", ()))
        if unstored:
            raise InvalidStateError(
                f"the server at {self.base_url} did not store {len(unstored)} blob(s) of a batch, "
                f"e.g. {min(unstored)}",
                hint="retry; if it happens again, check the server's log",
            )

    def _check_batch(self, response: httpx.Response) -> httpx.Response:
        # A server from before batches answers 404 (no such path) or 405 (POST to
        # the path of PUT/GET /blobs/{digest}); neither ever comes from the batch routes.
        if response.status_code in (404, 405):
            raise _NoBatchApi
        return self._check(response)

    def _split(self, blobs: Sequence[tuple[Digest, bytes]]) -> None:
        half = len(blobs) // 2
        self.put_batch(blobs[:half])
        self.put_batch(blobs[half:])

    def get_batch(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """The content of those ``digests`` the server sends in one batch (not verified).

        Missing from the answer: blobs the server lacks or will not batch (too large),
        or all of them when the server has no batch API or refuses it to the caller:
        fetch those one by one.
        """
        if not self.batches or not digests:
            return {}
        from loopline.data.frames import FrameReader

        def attempt() -> dict[Digest, bytes]:
            found: dict[Digest, bytes] = {}
            reader = FrameReader(max_frame=_MAX_FRAME)
            body = {"digests": [str(d) for d in digests]}
            with self._http.stream("POST", "/blobs/fetch", json=body) as response:
                self._check_batch(response)
                for chunk in response.iter_bytes(_CHUNK):
                    for text, content in reader.feed(chunk):
                        found[Digest.parse(text)] = content
            reader.finish()
            return found

        try:
            return self._retrying(attempt, idempotent=True)
        except (_NoBatchApi, PermissionDeniedError):
            # An older server, or one whose rules let this caller GET blobs but not
            # POST: the per-blob reads still work.
            self.batches = False
            return {}

    def upload_state(self, digest: Digest) -> dict[str, Any]:
        """``offset`` (bytes the server holds), ``stored`` and ``chunk_size`` of an upload."""
        answer: dict[str, Any] = self.call("GET", f"/uploads/{digest}")
        return answer

    def put_chunked(
        self, digest: Digest, source: Path, size: int, state: dict[str, Any] | None = None
    ) -> None:
        """Upload a file in chunks, from wherever the server's partial copy ends.

        Each chunk is retried on network errors; a chunk the server did not expect
        (another client sent it, or an answer was lost) makes the client ask again
        where the upload stands. Interrupted for good, the upload resumes the next
        time the same content is sent, by this client or another.
        """
        state = state or self.upload_state(digest)
        chunk = int(state["chunk_size"])
        offset = int(state["offset"])
        with open(source, "rb") as handle:
            while offset < size:
                handle.seek(offset)
                data = handle.read(min(chunk, size - offset))
                if not data:
                    raise InvalidStateError(f"{source} shrank while it was uploaded")
                offset = self._put_chunk(digest, offset, data)
        self._retrying(
            lambda: self._check(self._http.post(f"/uploads/{digest}/complete")), idempotent=True
        )

    def _put_chunk(self, digest: Digest, offset: int, data: bytes) -> int:
        """Send one chunk; the server's new offset (where the next chunk starts)."""
        headers = {"content-type": "application/octet-stream"}

        def attempt() -> int:
            response = self._http.put(
                f"/uploads/{digest}", params={"offset": offset}, content=data, headers=headers
            )
            return int(_answer(self._check(response))["offset"])

        try:
            return self._retrying(attempt, idempotent=True)
        except InvalidStateError:
            return int(self.upload_state(digest)["offset"])  # resume where the server stands

    def get_blob(self, digest: Digest, out: Callable[[bytes], object]) -> None:
        """Stream a blob to ``out`` (chunk by chunk; not verified here)."""

        def attempt() -> None:
            with self._http.stream("GET", f"/blobs/{digest}") as response:
                self._check(response)
                for chunk in response.iter_bytes(_CHUNK):
                    out(chunk)

        self._retrying(attempt, idempotent=True)


class _NoBatchApi(Exception):
    """The server has no batch routes (it predates them)."""


def _answer(response: Any) -> dict[str, Any]:
    import orjson

    decoded: dict[str, Any] = orjson.loads(response.content)
    return decoded


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


class HttpBlobStore(BlobStore):
    """A server's blob store, through ``/api/v1/data/blobs``; every read is verified."""

    def __init__(self, http: DataHttpClient) -> None:
        self.http = http
        self.uri = f"{http.base_url}{API}/blobs"

    def _refused(self, what: str) -> InvalidStateError:
        return InvalidStateError(
            f"{what} is not available through the server's data API ({self.http.base_url})",
            hint="run it on the server's host",
        )

    def put_file(self, path: Path, *, digest: Digest | None = None) -> Digest:
        if digest is None:
            hasher = Hasher()
            with open(path, "rb") as handle:
                for chunk in _chunks(handle):
                    hasher.update(chunk)
            digest = Digest(ALGO, hasher.hexdigest())
        self.http.put_blob(digest, Path(path))
        return digest

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of_bytes(data)
        self.http.put_blob(digest, data)
        return digest

    def put_batch(self, blobs: Sequence[tuple[Digest, bytes]]) -> None:
        """Upload small blobs in one request (see :meth:`DataHttpClient.put_batch`)."""
        self.http.put_batch(blobs)

    def get_batch(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """Small blobs in one request, unverified: the caller checks each (and fetches
        those missing from the answer one by one)."""
        return self.http.get_batch(digests)

    def exists(self, digest: Digest) -> bool:
        return not self.missing([digest])

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = sorted({str(d) for d in digests})
        return {Digest.parse(d) for d in self.http.missing(wanted)}

    def size(self, digest: Digest) -> int:
        return len(self.get_bytes(digest, verify=False))

    def open(self, digest: Digest) -> BinaryIO:
        return io.BytesIO(self.get_bytes(digest, verify=False))

    def _corrupt(self, digest: Digest) -> IntegrityError:
        return IntegrityError(
            f"blob {digest} from {self.uri} is corrupt: its content does not match its digest",
            hint="run `loopline data verify` on the server's host",
        )

    def get_bytes(self, digest: Digest, *, verify: bool = True) -> bytes:
        buffer = bytearray()
        self.http.get_blob(digest, buffer.extend)
        data = bytes(buffer)
        if verify and Digest.of_bytes(data) != digest:
            raise self._corrupt(digest)
        return data

    def get_file(self, digest: Digest, dest: Path, *, verify: bool = True) -> None:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                hasher = Hasher()

                def write(chunk: bytes) -> None:
                    hasher.update(chunk)
                    out.write(chunk)

                self.http.get_blob(digest, write)
            if verify and hasher.hexdigest() != digest.hex:
                raise self._corrupt(digest)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, digest: Digest) -> None:
        raise self._refused("deleting a blob")

    def iter_digests(self) -> Iterator[Digest]:
        raise self._refused("listing every blob")

    def write_file(self, key: str, data: bytes) -> None:
        raise self._refused(f"writing {key}")

    def read_file(self, key: str) -> bytes:
        raise NotFoundError(f"file {key!r} is not served by {self.uri}")

    def list_files(self, prefix: str = "") -> list[str]:
        return []  # no packs: files uploaded through the API are blobs of their own

    def delete_file(self, key: str) -> None:
        raise self._refused(f"deleting {key}")


class _NoDatabase:
    """Stands for the database an :class:`HttpDataStore` does not have."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _refuse(self) -> InvalidStateError:
        return InvalidStateError(
            f"this data operation needs the metadata database; it does not work through "
            f"the server at {self.base_url}",
            hint="run it on the server's host, with LOOPLINE_TRACKING_URI set to its database",
        )

    def read(self) -> Any:
        raise self._refuse()

    def write(self) -> Any:
        raise self._refuse()


def _row(doc: dict[str, Any]) -> VersionRow:
    return VersionRow(*(doc[c] for c in VERSION_COLUMNS))


class HttpDataStore(DataStore):
    """The version methods of :class:`~loopline.data.store.DataStore`, answered by a server.

    The project is the client's (sent with every call), so ``project`` arguments are
    ignored. Methods not overridden here reach for the database and are refused.
    """

    def __init__(self, http: DataHttpClient) -> None:
        self.http = http
        self.db = cast("Database", _NoDatabase(http.base_url))
        self._tags: dict[int, list[str]] = {}

    def _version(self, doc: dict[str, Any]) -> VersionRow:
        row = _row(doc)
        self._tags[row.id] = list(doc.get("tags", []))
        return row

    def latest(self, project: str, name: str) -> VersionRow | None:
        try:
            return self._version(self.http.call("GET", "/version", params={"ref": name})["version"])
        except NotFoundError:
            return None

    def record(self, new: NewVersion) -> tuple[VersionRow, bool]:
        body = {
            "name": new.name,
            "digest": new.digest,
            "message": new.message,
            "source": new.source,
            "schema_json": new.schema_json,
            "profile_digest": new.profile_digest,
            "tags": list(new.tags),
        }
        answer = self.http.call("POST", "/versions", json=body)
        return self._version(answer["version"]), bool(answer["created"])

    def resolve(self, project: str, ref: Ref) -> VersionRow:
        return self._version(self.http.call("GET", "/version", params={"ref": str(ref)})["version"])

    def versions(self, project: str, name: str) -> list[VersionRow]:
        answer = self.http.call("GET", "/versions", params={"name": name})
        return [self._version(v) for v in answer["versions"]]

    def datasets(self, project: str) -> list[DatasetRow]:
        answer = self.http.call("GET", "/datasets")
        return [DatasetRow(**d) for d in answer["datasets"]]

    def tags_for(self, version_ids: Sequence[int]) -> dict[int, list[str]]:
        return {i: self._tags[i] for i in version_ids if self._tags.get(i)}

    def add_edge(
        self,
        src: tuple[str, str],
        dst: tuple[str, str],
        relation: str,
        context: str = "",
    ) -> bool:
        body = {"src": list(src), "dst": list(dst), "relation": relation, "context": context}
        return bool(self.http.call("POST", "/lineage/edges", json=body)["created"])

    def move_tag(self, project: str, ref: Ref, tag: str, actor: str) -> TagMove:
        answer = self.http.call("POST", "/tags", json={"ref": str(ref), "tag": tag})
        return TagMove(**answer)

    def tag_history(self, project: str, name: str) -> list[tuple[str, int | None, int, str, int]]:
        answer = self.http.call("GET", "/tags", params={"name": name})
        keys = ("tag", "from_version", "to_version", "actor", "created_at")
        return [tuple(move[k] for k in keys) for move in answer["history"]]


def remote_lineage(http: DataHttpClient, ref: str | None, run_id: str | None) -> Lineage:
    """:func:`loopline.data.lineage.lineage`, answered by the server."""
    from loopline.data.entities import Lineage, LineageRun, ModelUse

    doc = http.call("GET", "/lineage", params={"ref": ref, "run_id": run_id})
    return Lineage(
        subject=doc["subject"],
        runs=[LineageRun(**r) for r in doc["runs"]],
        models=[ModelUse(**m) for m in doc["models"]],
        datasets=[(d[0], d[1]) for d in doc["datasets"]],
    )


def remote_gc(http: DataHttpClient, *, dry_run: bool, grace_seconds: float) -> GcResult:
    """:func:`loopline.data.gc.gc` on the server's store (administrators only)."""
    from loopline.data.entities import GcResult

    doc = http.call("POST", "/gc", json={"dry_run": dry_run, "grace_seconds": grace_seconds})
    return GcResult(**doc)


def remote_verify(http: DataHttpClient, ref: str | None) -> VerifyReport:
    """:func:`loopline.data.verify.verify` on the server's store."""
    from loopline.data.entities import VerifyReport

    doc = http.call("POST", "/verify", json={"ref": ref}, idempotent=True)
    return VerifyReport(
        blobs_checked=doc["blobs_checked"],
        bytes_checked=doc["bytes_checked"],
        corrupt=[(c[0], c[1]) for c in doc["corrupt"]],
        missing=[(m[0], m[1]) for m in doc["missing"]],
    )


def upload(
    service: DataService,
    files: Sequence[ScannedFile],
    known: dict[str, str],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Hash ``files`` here (``known`` digests are trusted), upload those the server lacks.

    Returns ``relpath -> hex digest`` of every file.
    """
    from loopline.data.ingest import hash_files

    unknown = [f for f in files if f.relpath not in known]
    digests = {**known, **hash_files(unknown, workers=workers)}
    sources: dict[str, tuple[int, str]] = {}
    for f in files:
        sources.setdefault(digests[f.relpath], (f.size, f.abspath))
    absent = sorted(d.hex for d in service.blobs.missing(Digest(ALGO, h) for h in sources))
    send_batches(cast("HttpBlobStore", service.blobs), absent, sources, workers, progress)
    return digests


def send_batches(
    blobs: HttpBlobStore,
    absent: Sequence[str],
    sources: dict[str, tuple[int, str]],
    workers: int | None,
    progress: Progress | None,
) -> int:
    """Upload the files behind ``absent`` digests: small ones in batches, large ones alone.

    ``sources`` maps a hex digest to ``(size, path)``; returns the bytes sent.
    """
    from loopline.data.transfer import run_batches

    def size(hexdigest: str) -> int:
        return sources[hexdigest][0]

    def send(batch: list[str]) -> int:
        if len(batch) == 1 and sources[batch[0]][0] > BATCH_FILE:
            size, path = sources[batch[0]]
            blobs.put_file(Path(path), digest=Digest(ALGO, batch[0]))
            return size
        contents = [(Digest(ALGO, h), Path(sources[h][1]).read_bytes()) for h in batch]
        blobs.put_batch(contents)
        return sum(len(c) for _, c in contents)

    return run_batches(transfer_batches(absent, size), size, send, workers, progress)


def transfer_batches(digests: Sequence[str], size: Callable[[str], int]) -> list[list[str]]:
    """``digests`` as the requests that move them: blobs up to :data:`BATCH_FILE` grouped
    (:data:`BATCH_BYTES`, :data:`BATCH_COUNT` at most), each larger one alone, last.

    >>> transfer_batches(["a", "b", "c"], {"a": 10, "b": 2 << 20, "c": 10}.__getitem__)
    [['a', 'c'], ['b']]
    """
    from loopline.data.frames import group

    small = [d for d in digests if size(d) <= BATCH_FILE]
    return group(small, size, BATCH_BYTES, BATCH_COUNT) + [
        [d] for d in digests if size(d) > BATCH_FILE
    ]

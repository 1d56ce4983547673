"""The S3 blob store: the local store's layout and guarantees in a bucket.

Layout under ``s3://bucket/prefix``::

    objects/ab/cdef...   immutable blobs, sharded by the first two hex characters
    files/<key>          the plain-path area

Any S3-compatible endpoint works (AWS, MinIO, Ceph, moto). The endpoint comes from
``endpoint_url=``, else ``LOOPLINE_S3_ENDPOINT_URL``, else boto3's own configuration
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, profiles); credentials and region the
boto3 way (region ``us-east-1`` when none is configured). boto3 is imported when a
store is made, never by ``import loopline.store.blobs``; without it the constructor
raises :class:`~loopline.errors.MissingDependencyError` naming ``loopline[s3]``.

Guarantees, as in the local store:

* An object's key is the digest of its content. A file is hashed first; the upload
  then hashes what it sends again and fails *before* the object is completed when the
  two differ (the file changed in between), so no key ever holds other content.
  Uploads skip objects that exist; large ones go up in parallel parts.
* Reads verify the digest by default; a download lands in a temp file beside its
  destination that is renamed into place only once verified.
* :meth:`S3BlobStore.missing` answers for thousands of digests with one listing per
  shard instead of one request per digest; :meth:`~S3BlobStore.put_many` and
  :meth:`~S3BlobStore.get_many` move many blobs in parallel.

One boto3 client serves every thread (boto3 clients are thread-safe).

>>> parse_s3_uri("s3://my-bucket/team/blobs/")
('my-bucket', 'team/blobs')
>>> parse_s3_uri("s3://my-bucket")
('my-bucket', '')
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import re
import tempfile
import threading
from collections import defaultdict
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from loopline.errors import (
    IntegrityError,
    InvalidArgumentError,
    LooplineError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    UnauthenticatedError,
)
from loopline.store.blobs.base import BlobStore
from loopline.store.digest import ALGO, Digest, Hasher
from loopline.store.gc import BlobInfo
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["ENDPOINT_VAR", "S3BlobStore", "parse_s3_uri"]

ENDPOINT_VAR = "LOOPLINE_S3_ENDPOINT_URL"
CHUNK = 4 * 1024 * 1024
MiB = 1024 * 1024
_MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload
_LIST_PAGE = 1000  # S3's largest listing page
_HEADS_BELOW = 3  # a shard with fewer wanted digests than this is asked with HEADs
_BLOB_KEY = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{62})$")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})

T = TypeVar("T")
R = TypeVar("R")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``(bucket, prefix)``; the prefix is normalised, may be ''."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    hint = "write s3://BUCKET or s3://BUCKET/PREFIX"
    if scheme != "s3" or not sep:
        raise InvalidArgumentError(f"not an S3 URI: {uri!r}", hint=hint)
    if not _BUCKET.match(bucket):
        raise InvalidArgumentError(f"{uri!r} does not name a valid bucket", hint=hint)
    if "?" in prefix or "#" in prefix:
        raise InvalidArgumentError(f"{uri!r}: query strings are not supported", hint=hint)
    return bucket, safe_relpath(prefix, allow_empty=True)


def _load_boto3() -> Any:
    try:
        import boto3  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError("boto3", "s3") from exc
    return boto3


class S3BlobStore(BlobStore):
    """Blobs in an S3 bucket, under an optional prefix.

    ``multipart_threshold`` and ``multipart_chunksize`` (bytes) decide when and in
    what parts a blob moves in parallel ranges, ``max_concurrency`` how many threads
    move the parts of one blob; ``max_workers`` is the default parallelism of
    :meth:`missing`, :meth:`put_many` and :meth:`get_many`. ``client`` injects a
    ready boto3 S3 client (its endpoint and credentials are then the client's).

    Memory: a blob under the threshold is read whole; a larger one keeps at most
    ``max_concurrency`` parts in memory (64 MiB with the defaults) per transfer.
    """

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        max_concurrency: int = 8,
        max_workers: int = 16,
    ) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url or os.environ.get(ENDPOINT_VAR) or None
        self.region_name = region_name
        if multipart_chunksize < 5 * MiB:
            raise InvalidArgumentError("multipart_chunksize must be at least 5 MiB (S3's minimum)")
        self.multipart_threshold = max(multipart_threshold, 1)
        self.multipart_chunksize = multipart_chunksize
        self.max_concurrency = max_concurrency
        self.max_workers = max_workers
        self._boto3 = _load_boto3()
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.uri!r})"

    # A store crosses process boundaries (executors) as its settings; the client is remade.
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in {"_client", "_lock", "_boto3"}}
        state["_owns_client"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._boto3 = _load_boto3()
        self._client = None
        self._lock = threading.Lock()

    # -- the client and its errors -----------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use and shared by every thread."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def _make_client(self) -> Any:
        from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

        session = self._boto3.session.Session(botocore_session=_botocore_session())
        s3_options = {"addressing_style": "path"} if self.endpoint_url else {}
        config = Config(
            max_pool_connections=max(32, self.max_workers + self.max_concurrency),
            retries={"max_attempts": 5, "mode": "standard"},
            s3=s3_options,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name or session.region_name or "us-east-1",
            config=config,
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()
        self._owns_client = True  # a later use makes (and owns) a new client

    @contextlib.contextmanager
    def _translate(
        self, what: str, missing: Callable[[], LooplineError] | None = None
    ) -> Iterator[None]:
        """Turn boto3's exceptions into loopline's error tree (ours pass through)."""
        try:
            yield
        except LooplineError:
            raise
        except Exception as exc:
            from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
                ClientError,
                NoCredentialsError,
            )

            if isinstance(exc, ClientError):
                raise self._client_error(exc, what, missing) from exc
            if isinstance(exc, NoCredentialsError):
                raise UnauthenticatedError(
                    f"no AWS credentials for {self.uri}",
                    hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                ) from exc
            if type(exc).__module__.startswith(("botocore.", "boto3.", "s3transfer.")):
                raise StoreError(  # connection failures, timeouts, exhausted retries
                    f"{what} in {self.uri} failed: {exc}",
                    hint=f"check the endpoint ({self.client.meta.endpoint_url}) and the network",
                ) from exc
            raise

    def _client_error(
        self, exc: Any, what: str, missing: Callable[[], LooplineError] | None
    ) -> LooplineError:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), error.get("Message") or str(exc)
        if code == "NoSuchBucket":
            return NotFoundError(
                f"bucket {self.bucket!r} does not exist ({self.uri})",
                hint="create it first, or check the URI and the endpoint",
            )
        if code in _NOT_FOUND:
            return missing() if missing is not None else NotFoundError(f"{what}: not found")
        if code in _DENIED:
            return PermissionDeniedError(
                f"{what} in {self.uri} was refused: {code} {message}",
                hint="check the credentials and that they may read, write and list the bucket",
            )
        return StoreError(f"{what} in {self.uri} failed: {code} {message}")

    # -- keys ------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def object_key(self, digest: Digest) -> str:
        """The key a blob lives under: ``<prefix>/objects/ab/cdef...``."""
        head, tail = digest.shard
        return self._key("objects", head, tail)

    def object_url(self, digest: Digest) -> str:
        return f"s3://{self.bucket}/{self.object_key(digest)}"

    def _missing(self, digest: Digest) -> NotFoundError:
        return NotFoundError(
            f"blob {digest} is missing from {self.uri}",
            hint="run `loopline data verify` to check the store",
        )

    def _corrupt(self, digest: Digest) -> IntegrityError:
        return IntegrityError(
            f"blob {digest} at {self.object_url(digest)} is corrupt: its content does not match",
            hint="restore it from a remote with `loopline data pull`, or delete it and re-add",
        )

    def _transfer_config(self, size: int) -> Any:
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped,unused-ignore]

        # Parts must be large enough that a blob of this size needs at most 10,000.
        chunk = max(self.multipart_chunksize, -(-size // _MAX_PARTS))
        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=chunk,
            max_concurrency=self.max_concurrency,
        )
        # Parts of a one-pass upload wait in memory; s3transfer's knob, not in boto3's init.
        config.max_in_memory_upload_chunks = self.max_concurrency
        return config

    # -- writing objects ---------------------------------------------------------------------
    def put_file(self, path: Path, *, digest: Digest | None = None) -> Digest:
        if digest is not None and self.exists(digest):
            return digest
        return self._put_file(Path(path), digest, known_missing=digest is not None)

    def _put_file(self, path: Path, claimed: Digest | None, *, known_missing: bool) -> Digest:
        size = path.stat().st_size
        if size < self.multipart_threshold:  # one read: what is hashed is what is sent
            data = path.read_bytes()
            actual = Digest.of_bytes(data)
            _check_claim(path, claimed, actual)
            if not (known_missing and actual == claimed) and self.exists(actual):
                return actual
            self._put_small(actual, data)
            return actual
        actual = _hash_file(path)
        _check_claim(path, claimed, actual)
        if not (known_missing and actual == claimed) and self.exists(actual):
            return actual
        with path.open("rb") as fh, self._translate(f"uploading {path}"):
            self.client.upload_fileobj(
                _VerifyingReader(fh, actual, str(path)),
                self.bucket,
                self.object_key(actual),
                Config=self._transfer_config(size),
            )
        return actual

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of_bytes(data)
        if self.exists(digest):
            return digest
        if len(data) < self.multipart_threshold:
            self._put_small(digest, data)
            return digest
        with self._translate(f"storing blob {digest}"):
            self.client.upload_fileobj(
                io.BytesIO(data),
                self.bucket,
                self.object_key(digest),
                Config=self._transfer_config(len(data)),
            )
        return digest

    def _put_small(self, digest: Digest, data: bytes) -> None:
        with self._translate(f"storing blob {digest}"):
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(digest), Body=data)

    # -- asking about objects ------------------------------------------------------------------
    def _head(self, key: str, missing: Callable[[], LooplineError]) -> dict[str, Any]:
        with self._translate(f"reading {key}", missing):
            return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=key))

    def _key_exists(self, key: str) -> bool:
        try:
            self._head(key, lambda: NotFoundError(key))
        except NotFoundError:
            return False
        return True

    def exists(self, digest: Digest) -> bool:
        return self._key_exists(self.object_key(digest))

    def size(self, digest: Digest) -> int:
        head = self._head(self.object_key(digest), lambda: self._missing(digest))
        return int(head["ContentLength"])

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """The digests not stored here, asked shard by shard in parallel.

        A shard with a few wanted digests is asked with a HEAD each; otherwise it is
        listed from just before the first wanted digest, until the last one is passed
        or a HEAD per remaining digest becomes cheaper than further pages.
        """
        by_shard: dict[str, set[str]] = defaultdict(set)
        for digest in digests:
            head, tail = digest.shard
            by_shard[head].add(tail)
        shards = sorted(by_shard)
        answers = self._parallel(lambda h: self._missing_in_shard(h, by_shard[h]), shards)
        return {
            Digest(ALGO, head + tail)
            for head, tails in zip(shards, answers, strict=True)
            for tail in tails
        }

    def _missing_in_shard(self, head: str, tails: set[str]) -> set[str]:
        shard = self._key("objects", head) + "/"
        wanted = sorted(tails)
        if len(wanted) < _HEADS_BELOW:
            return {t for t in wanted if not self._key_exists(shard + t)}
        found: set[str] = set()
        start_after, pages = shard + wanted[0][:-1], 0
        while True:
            with self._translate(f"listing {shard}"):
                page = self.client.list_objects_v2(
                    Bucket=self.bucket, Prefix=shard, StartAfter=start_after, MaxKeys=_LIST_PAGE
                )
            pages += 1
            contents = page.get("Contents") or []
            found.update(obj["Key"][len(shard) :] for obj in contents)
            if not page.get("IsTruncated") or not contents:
                break
            start_after = contents[-1]["Key"]
            unresolved = wanted[bisect.bisect_right(wanted, start_after[len(shard) :]) :]
            if len(unresolved) <= pages:  # as many HEADs as pages so far: stop listing
                found.update(t for t in unresolved if self._key_exists(shard + t))
                break
        return tails - found

    def iter_objects(self) -> Iterator[BlobInfo]:
        """Every blob with its size and last-modified time, from the listing (for gc)."""
        base = self._key("objects") + "/"
        for obj in self._list(base):
            match = _BLOB_KEY.match(obj["Key"][len(base) :])
            if match:
                modified = obj.get("LastModified")
                yield BlobInfo(
                    Digest(ALGO, match[1] + match[2]),
                    int(obj.get("Size", 0)),
                    None if modified is None else int(modified.timestamp() * 1000),
                )

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored digest, in order; keys that are not blobs are skipped."""
        for info in self.iter_objects():
            yield info.digest

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._translate(f"listing {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents") or []

    # -- reading objects -----------------------------------------------------------------
    def _get(self, digest: Digest) -> dict[str, Any]:
        with self._translate(f"reading blob {digest}", lambda: self._missing(digest)):
            return cast(
                dict[str, Any],
                self.client.get_object(Bucket=self.bucket, Key=self.object_key(digest)),
            )

    def open(self, digest: Digest) -> BinaryIO:
        """A streaming reader over the blob (not verified)."""
        return cast(BinaryIO, self._get(digest)["Body"])

    def get_bytes(self, digest: Digest, *, verify: bool = True) -> bytes:
        with self._get(digest)["Body"] as body, self._translate(f"reading blob {digest}"):
            data = cast(bytes, body.read())
        if verify and Digest.of_bytes(data) != digest:
            raise self._corrupt(digest)
        return data

    def get_file(self, digest: Digest, dest: Path, *, verify: bool = True) -> None:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                written = self._download(digest, out)
            if verify and (written or _hash_file(Path(tmp))) != digest:
                raise self._corrupt(digest)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _download(self, digest: Digest, out: BinaryIO) -> Digest | None:
        """Write the blob to ``out``; returns the digest of what was written, or None
        when it came in parallel ranges and has to be hashed from the file."""
        response = self._get(digest)
        size = int(response["ContentLength"])
        if size >= self.multipart_threshold:
            response["Body"].close()
            with self._translate(f"downloading blob {digest}", lambda: self._missing(digest)):
                self.client.download_fileobj(
                    self.bucket, self.object_key(digest), out, Config=self._transfer_config(size)
                )
            return None
        hasher = Hasher()
        with response["Body"] as body, self._translate(f"reading blob {digest}"):
            while chunk := body.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        return Digest(ALGO, hasher.hexdigest())

    def delete(self, digest: Digest) -> None:
        with self._translate(f"deleting blob {digest}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(digest))

    # -- many at once ------------------------------------------------------------------------
    def put_many(
        self,
        items: Iterable[tuple[Path, Digest | None]],
        *,
        max_workers: int | None = None,
        progress: Callable[[Path, Digest], None] | None = None,
    ) -> list[Digest]:
        """Store many local files in parallel; returns their digests, in order.

        Known digests are checked with one bulk :meth:`missing` first: a file already
        stored is neither read nor sent. ``progress(path, digest)`` is called from the
        worker threads as each file is done. The first failure cancels what has not
        started and is raised.
        """
        pairs = [(Path(path), digest) for path, digest in items]
        absent = self.missing({d for _, d in pairs if d is not None})

        def put(pair: tuple[Path, Digest | None]) -> Digest:
            path, digest = pair
            if digest is None or digest in absent:
                digest = self._put_file(path, digest, known_missing=digest is not None)
            if progress is not None:
                progress(path, digest)
            return digest

        return self._parallel(put, pairs, max_workers)

    def get_many(
        self,
        items: Iterable[tuple[Digest, Path]],
        *,
        verify: bool = True,
        max_workers: int | None = None,
        progress: Callable[[Digest, Path], None] | None = None,
    ) -> None:
        """Materialise many blobs in parallel, each as :meth:`get_file` does."""

        def get(pair: tuple[Digest, Path]) -> None:
            self.get_file(pair[0], pair[1], verify=verify)
            if progress is not None:
                progress(*pair)

        self._parallel(get, list(items), max_workers)

    def _parallel(
        self, fn: Callable[[T], R], items: Sequence[T], max_workers: int | None = None
    ) -> list[R]:
        """``[fn(x) for x in items]`` on a thread pool; the first error cancels the rest."""
        workers = min(max_workers or self.max_workers, len(items))
        if workers <= 1:
            return [fn(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopline-s3")
        try:
            futures = [pool.submit(fn, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and future.exception() is not None:
                    raise cast(BaseException, future.exception())
            return [future.result() for future in futures]
        finally:  # also on Ctrl-C: nothing new starts, running transfers finish
            pool.shutdown(wait=True, cancel_futures=True)

    # -- plain-path files ------------------------------------------------------------------
    def _file_key(self, key: str) -> str:
        return self._key("files", safe_relpath(key))

    def write_file(self, key: str, data: bytes) -> None:
        full = self._file_key(key)
        with self._translate(f"writing {full}"):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def read_file(self, key: str) -> bytes:
        full = self._file_key(key)
        with self._translate(
            f"reading {full}", lambda: NotFoundError(f"file {key!r} is not in {self.uri}")
        ):
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            with response["Body"] as body:
                return cast(bytes, body.read())

    def list_files(self, prefix: str = "") -> list[str]:
        rel = safe_relpath(prefix, allow_empty=True)
        base = self._key("files") + "/"
        if not rel:
            return sorted(obj["Key"][len(base) :] for obj in self._list(base))
        found = [obj["Key"][len(base) :] for obj in self._list(f"{base}{rel}/")]
        if self._key_exists(base + rel):
            found.append(rel)
        return sorted(found)

    def delete_file(self, key: str) -> None:
        """Delete the file at ``key``, or every file under it."""
        full = self._file_key(key)
        keys = [full, *(obj["Key"] for obj in self._list(full + "/"))]
        for start in range(0, len(keys), _LIST_PAGE):
            batch = [{"Key": k} for k in keys[start : start + _LIST_PAGE]]
            with self._translate(f"deleting {full}"):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(
                    f"could not delete {first.get('Key')} from {self.uri}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )


_loader_lock = threading.Lock()
_loader: list[Any] = []


def _botocore_session() -> Any:
    """A fresh botocore session (credentials and region resolved anew) that shares the
    loaded API models with every other store: a client then takes ~20 ms, not ~150."""
    import botocore.session  # type: ignore[import-untyped,unused-ignore]

    session = botocore.session.get_session()
    with _loader_lock:
        if _loader:
            session.register_component("data_loader", _loader[0])
        else:
            _loader.append(session.get_component("data_loader"))
    return session


def _check_claim(path: Path, claimed: Digest | None, actual: Digest) -> None:
    if claimed is not None and actual != claimed:
        raise IntegrityError(
            f"{path} changed while it was being stored (expected {claimed}, read {actual})",
            hint="retry once the file is no longer being written",
        )


def _hash_file(path: Path) -> Digest:
    hasher = Hasher()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return Digest(ALGO, hasher.hexdigest())


class _VerifyingReader:
    """A read-once, non-seekable view of a file that hashes what the upload reads.

    Not seekable, so the transfer reads it front to back exactly once (each part is
    kept in memory for retries). On reaching the end it compares the hash with the
    digest the object is being stored under and raises, failing the transfer before
    the object is completed, when the file changed since it was hashed.
    """

    def __init__(self, fh: BinaryIO, expected: Digest, name: str) -> None:
        self._fh = fh
        self._expected = expected
        self._name = name
        self._hasher = Hasher()
        self._checked = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        data = self._fh.read(-1 if size is None else size)
        self._hasher.update(data)
        if size is None or size < 0 or len(data) < size:  # a short read is the end
            self._check()
        return data

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        sent = Digest(ALGO, self._hasher.hexdigest())
        if sent != self._expected:
            raise IntegrityError(
                f"{self._name} changed while it was being stored "
                f"(hashed as {self._expected}, then read as {sent})",
                hint="retry once the file is no longer being written",
            )

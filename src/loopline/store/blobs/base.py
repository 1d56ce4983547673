"""The blob store interface.

Two areas live in one store:

* **objects**: immutable content addressed by its :class:`~loopline.store.digest.Digest`
  (artifacts, dataset files, model files). Writing the same content twice stores it once.
* **files**: a plain-path area for append-style data that is not worth addressing by
  content (run logs, prediction log parts). Keys are validated relative paths.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from loopline.store.digest import Digest

__all__ = ["BlobStore", "open_blob_store", "register_blob_store"]


class BlobStore(abc.ABC):
    """Content-addressed storage of immutable blobs plus a plain-path file area."""

    uri: str

    # -- objects -------------------------------------------------------------------
    @abc.abstractmethod
    def put_file(self, path: Path, *, digest: Digest | None = None) -> Digest:
        """Store a local file; returns its digest. A known ``digest`` skips hashing."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> Digest:
        """Store bytes; returns their digest."""

    @abc.abstractmethod
    def exists(self, digest: Digest) -> bool: ...

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` not stored here (a remote store overrides this in bulk)."""
        return {d for d in digests if not self.exists(d)}

    @abc.abstractmethod
    def size(self, digest: Digest) -> int: ...

    @abc.abstractmethod
    def open(self, digest: Digest) -> BinaryIO:
        """A binary reader over the blob (not verified: use :meth:`get_bytes` or :meth:`get_file`)."""

    @abc.abstractmethod
    def get_bytes(self, digest: Digest, *, verify: bool = True) -> bytes: ...

    @abc.abstractmethod
    def get_file(self, digest: Digest, dest: Path, *, verify: bool = True) -> None:
        """Materialise a blob at ``dest`` atomically; raise IntegrityError on a digest mismatch."""

    @abc.abstractmethod
    def delete(self, digest: Digest) -> None: ...

    @abc.abstractmethod
    def iter_digests(self) -> Iterator[Digest]: ...

    # -- plain-path files ------------------------------------------------------------
    @abc.abstractmethod
    def write_file(self, key: str, data: bytes) -> None:
        """Write (or replace) the file at ``key`` atomically."""

    @abc.abstractmethod
    def read_file(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def list_files(self, prefix: str = "") -> list[str]: ...

    @abc.abstractmethod
    def delete_file(self, key: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, pools)."""


_FACTORIES: dict[str, Callable[[str], BlobStore]] = {}


def register_blob_store(scheme: str, factory: Callable[[str], BlobStore]) -> None:
    """Make ``open_blob_store`` pick ``factory`` for URIs starting ``scheme://``."""
    _FACTORIES[scheme] = factory


def open_blob_store(uri: str, *, fsync: bool = False) -> BlobStore:
    """Open the blob store a URI names; a bare path is a local store.

    >>> import tempfile
    >>> store = open_blob_store(tempfile.mkdtemp())
    >>> type(store).__name__
    'LocalBlobStore'
    """
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme == "file":
        from loopline.store.blobs.local import LocalBlobStore

        return LocalBlobStore(uri.removeprefix("file://"), fsync=fsync)
    if scheme in _FACTORIES:
        return _FACTORIES[scheme](uri)
    if scheme == "s3":
        from loopline.store.blobs import s3

        return s3.S3BlobStore(uri)
    from loopline.errors import InvalidArgumentError

    raise InvalidArgumentError(
        f"no blob store for URI scheme {scheme!r}",
        hint="use a local path, file://PATH or s3://BUCKET/PREFIX",
    )

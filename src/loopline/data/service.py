"""The data service: one object holding what every data operation needs.

It opens things lazily: the blob store, the state cache, the stdlib-``sqlite3``
fast store, and only when an operation needs more, the SQLAlchemy
:class:`~loopline.data.store.DataStore` (which migrates the database). ``add`` and
``status`` on an unchanged tree therefore never import SQLAlchemy.

The service works on a metadata database (embedded SQLite or a database URL), or,
when the tracking URI names a ``loopline server``, through the server's data API
(:mod:`loopline.data.http`): files are hashed here, only the blobs the server lacks
are uploaded, and versions are recorded there; what needs the server's database or
its whole blob store (lineage queries, ``gc``, ``verify``) the server answers whole.

The server builds one with :meth:`DataService.over` on its own database and blob store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.errors import InvalidStateError
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.data._sqlite import LiteStore
    from loopline.data.http import DataHttpClient
    from loopline.data.ingest import Sink
    from loopline.data.manifest import Manifest
    from loopline.data.refs import Ref
    from loopline.data.rows import NewVersion, VersionRow
    from loopline.data.state import State
    from loopline.data.store import DataStore
    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["DataService"]

_MANIFEST_CACHE = 8


class DataService:
    """Data versioning over the stores the settings name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None
        self._store: DataStore | None = None
        self._blobs: BlobStore | None = None
        self._state: State | None = None
        self._lite: LiteStore | None = None
        self._lite_tried = False
        self._borrowed = False
        self._manifests: dict[str, Manifest] = {}
        self.http: DataHttpClient | None = None
        """The server's data API when the tracking URI names a server (else None)."""
        if settings.remote:
            self._connect()

    def _connect(self) -> None:
        from loopline.data.http import DataHttpClient, HttpBlobStore, HttpDataStore

        self.http = DataHttpClient.from_settings(self.settings)
        self._blobs = HttpBlobStore(self.http)
        self._store = HttpDataStore(self.http)
        self._lite_tried = True

    @classmethod
    def over(cls, db: Database, blobs: BlobStore, *, user: str, project: str) -> DataService:
        """A service on stores someone else owns (the server's): closing it leaves them open."""
        import tempfile
        from pathlib import Path

        from loopline.config import Settings

        home = Path(tempfile.gettempdir()) / "loopline-server-data"
        service = cls(Settings(home=home, user=user, project=project))
        service._db = db
        service._blobs = blobs
        service._lite_tried = True  # SQLAlchemy only: the server's database may be anything
        service._borrowed = True
        return service

    def server(self) -> DataHttpClient | None:
        """The server's data API when the tracking URI names a server (else None)."""
        if self.settings.remote and self.http is None:
            self._connect()
        return self.http

    # -- stores, opened on first use ----------------------------------------------------
    @property
    def db(self) -> Database:
        if self.settings.remote:
            raise InvalidStateError(
                f"this data operation needs the metadata database; it does not work through "
                f"a server (the tracking URI is {self.settings.tracking_uri})",
                hint="run it on the server's host, with LOOPLINE_TRACKING_URI set to its database",
            )
        if self._db is None:
            from loopline.store.metadata import Database

            self._db = Database(self.settings.metadata_url)
        return self._db

    @property
    def store(self) -> DataStore:
        if self.settings.remote and self.http is None:
            self._connect()
        if self._store is None:
            from loopline.data.store import DataStore

            self._store = DataStore(self.db)
        return self._store

    @property
    def blobs(self) -> BlobStore:
        if self.settings.remote and self.http is None:
            self._connect()
        if self._blobs is None:
            from loopline.store.blobs import open_blob_store

            self._blobs = open_blob_store(self.settings.blobs_uri, fsync=self.settings.fsync)
        return self._blobs

    def sink(self) -> Sink:
        from loopline.data.ingest import sink_for

        return sink_for(self.blobs, fsync=self.settings.fsync)

    @property
    def state(self) -> State:
        if self._state is None:
            from loopline.data.state import open_state

            self._state = open_state(self.settings.home)
        return self._state

    def lite(self) -> LiteStore | None:
        """The stdlib-sqlite3 store when the metadata store allows it (see :mod:`._sqlite`)."""
        if not self._lite_tried and not self.settings.remote:
            from loopline.data._sqlite import open_lite

            self._lite = open_lite(self.settings.metadata_url)
            self._lite_tried = True
        return self._lite

    # -- versions -------------------------------------------------------------------------
    def latest(self, name: str) -> VersionRow | None:
        lite = self.lite()
        if lite is not None:
            return lite.latest(self.settings.project, name)
        return self.store.latest(self.settings.project, name)

    def record(self, new: NewVersion) -> tuple[VersionRow, bool]:
        lite = self.lite()
        if lite is not None:
            import sqlite3

            try:
                return lite.record(new)
            except sqlite3.DatabaseError:
                # The schema moved on (a migration is pending): the SQLAlchemy path migrates.
                lite.close()
                self._lite = None
        return self.store.record(new)

    def version(self, row: VersionRow, *, unchanged: bool = False) -> DatasetVersion:
        from loopline.data.version import DatasetVersion

        return DatasetVersion(row, self, unchanged=unchanged)

    def resolve(self, ref: str | Ref | DatasetVersion) -> DatasetVersion:
        """The version a reference (``NAME@REF`` text or parsed) names."""
        from loopline.data.refs import parse_ref
        from loopline.data.version import DatasetVersion

        if isinstance(ref, DatasetVersion):
            return ref
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        return self.version(self.store.resolve(self.settings.project, parsed))

    def manifest(self, digest: Digest | str) -> Manifest:
        """A manifest blob, verified and parsed (a few are cached)."""
        from loopline.data.manifest import Manifest

        key = str(digest)
        found = self._manifests.get(key)
        if found is None:
            blob = digest if isinstance(digest, Digest) else Digest.parse(digest)
            found = Manifest.from_bytes(self.blobs.get_bytes(blob, verify=True))
            if len(self._manifests) >= _MANIFEST_CACHE:
                self._manifests.pop(next(iter(self._manifests)))
            self._manifests[key] = found
        return found

    def manifest_digests(self, digest: Digest | str) -> set[str]:
        """The file digests of a manifest blob (verified), without parsing its entries."""
        from loopline.data.manifest import digests_in

        blob = digest if isinstance(digest, Digest) else Digest.parse(digest)
        return digests_in(self.blobs.get_bytes(blob, verify=True))

    def close(self) -> None:
        owned = (
            (self._lite, self._state)
            if self._borrowed
            else (self._lite, self._state, self._blobs, self._db, self.http)
        )
        for closer in owned:
            if closer is not None:
                closer.close()
        self._lite = self._state = self._blobs = self._db = None
        self._store = None
        self._lite_tried = False
        self.http = None

"""The metadata database and blob store behind commands that work on a store itself.

``loopline db`` and ``loopline gc`` act on a database, not through a server: they
refuse a tracking URI that names one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.cli._context import settings_for
from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import typer

    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["database_url", "open_blobs", "open_database"]


def database_url(ctx: typer.Context, backend_uri: str | None) -> str:
    if backend_uri:
        return backend_uri
    settings = settings_for(ctx)
    if settings.remote:
        raise InvalidArgumentError(
            f"this command works on a database, and the tracking URI names a server "
            f"({settings.tracking_uri})",
            hint="run it where the server runs, or pass --backend-uri with the database URL",
        )
    return settings.metadata_url


def open_database(url: str, *, migrate: bool) -> Database:
    from loopline.store.metadata import Database

    return Database(url, migrate=migrate)


def open_blobs(ctx: typer.Context, artifacts_uri: str | None) -> BlobStore:
    from loopline.store.blobs import open_blob_store

    settings = settings_for(ctx)
    return open_blob_store(artifacts_uri or settings.blobs_uri, fsync=settings.fsync)

"""Open the transport the settings point at."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.config import Settings, get_settings

if TYPE_CHECKING:
    from loopline.client.transport import Transport
    from loopline.tracking.service import TrackingService

__all__ = ["open_service", "open_transport"]


def open_service(settings: Settings | None = None, *, migrate: bool = True) -> TrackingService:
    """The embedded (or database-URL) store as a service, never over HTTP."""
    from loopline.store.blobs import open_blob_store
    from loopline.store.metadata import Database
    from loopline.tracking.service import TrackingService

    settings = settings or get_settings()
    db = Database(settings.metadata_url, migrate=migrate)
    blobs = open_blob_store(settings.blobs_uri, fsync=settings.fsync)
    return TrackingService(db, blobs, user=settings.user, project=settings.project)


def open_transport(settings: Settings | None = None) -> Transport:
    """An HTTP transport for ``http(s)://`` tracking URIs, else the store itself."""
    settings = settings or get_settings()
    if settings.remote:
        from loopline.client.http import HttpTransport

        assert settings.tracking_uri is not None
        return HttpTransport(
            settings.tracking_uri,
            token=settings.token,
            user=settings.user,
            project=settings.project,
        )
    return open_service(settings)

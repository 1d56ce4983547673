"""The registry SDK's client: one class over the embedded store or a server.

:class:`RegistryClient` picks its transport like the tracking
:class:`~loopline.client.client.Client`: an ``http(s)://`` tracking URI means a
``loopline server`` (:class:`~loopline.registry.http.RegistryHttpClient`), anything
else the metadata database and blob store themselves
(:class:`~loopline.registry.service.RegistryService`).

>>> import tempfile
>>> from pathlib import Path
>>> from loopline.config import Settings
>>> reg = RegistryClient(settings=Settings(home=Path(tempfile.mkdtemp())))
>>> reg.create_registered_model("fraud", require_approval=True).require_approval
True
>>> reg.close()
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import Settings, get_settings

if TYPE_CHECKING:
    import os

    from loopline.registry.entities import (
        Alias,
        AliasChange,
        LoggedModel,
        ModelVersion,
        RegisteredModel,
        Review,
        VersionComparison,
        VersionLineage,
    )
    from loopline.registry.transport import RegistryTransport

__all__ = ["RegistryClient", "open_registry"]


def open_registry(settings: Settings | None = None) -> RegistryTransport:
    """The registry transport the settings point at."""
    settings = settings or get_settings()
    if settings.remote:
        from loopline.registry.http import RegistryHttpClient

        assert settings.tracking_uri is not None
        return RegistryHttpClient(
            settings.tracking_uri,
            token=settings.token,
            user=settings.user,
            project=settings.project,
        )
    from loopline.registry.service import RegistryService
    from loopline.store.blobs import open_blob_store
    from loopline.store.metadata import Database

    return RegistryService(
        Database(settings.metadata_url),
        open_blob_store(settings.blobs_uri, fsync=settings.fsync),
        user=settings.user,
        project=settings.project,
    )


def _all_pages(fetch: Any, max_results: int) -> list[Any]:
    found: list[Any] = []
    token: str | None = None
    while len(found) < max_results:
        page, token = fetch(min(1000, max_results - len(found)), token)
        found.extend(page)
        if token is None:
            break
    return found


class RegistryClient:
    """Registered models, versions, aliases, reviews, lineage and model files."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        settings: Settings | None = None,
        transport: RegistryTransport | None = None,
    ) -> None:
        settings = settings or get_settings()
        if tracking_uri is not None:
            settings = settings.with_(tracking_uri=tracking_uri)
        self.settings = settings
        self._transport = transport
        self._lock = threading.Lock()

    @property
    def transport(self) -> RegistryTransport:
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = open_registry(self.settings)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> RegisteredModel:
        return self.transport.create_registered_model(
            name, description=description, tags=tags, require_approval=require_approval
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.transport.get_registered_model(name)

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        require_approval: bool | None = None,
        new_name: str | None = None,
    ) -> RegisteredModel:
        return self.transport.update_registered_model(
            name, description=description, require_approval=require_approval, new_name=new_name
        )

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        self.transport.delete_registered_model(name, force=force)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.transport.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.transport.set_registered_model_tag(name, key, None)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 10_000,
    ) -> list[RegisteredModel]:
        """Every matching model (up to ``max_results``), following pages."""
        return _all_pages(
            lambda n, token: self.transport.search_registered_models(
                filter_string=filter_string, order_by=order_by, max_results=n, page_token=token
            ),
            max_results,
        )

    # -- versions ------------------------------------------------------------------------
    def register_model(
        self,
        model_uri: str,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        return self.transport.register_model(model_uri, name, tags=tags, description=description)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.transport.get_model_version(name, int(version))

    def resolve(self, ref_or_uri: str) -> ModelVersion:
        return self.transport.resolve(ref_or_uri)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """A model's live versions, oldest first."""
        return _all_pages(  # an unknown model is an error, not []
            lambda n, token: self.transport.search_model_versions(
                name=name, order_by=["version_number ASC"], max_results=n, page_token=token
            ),
            1_000_000,
        )

    def search_model_versions(
        self,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 10_000,
    ) -> list[ModelVersion]:
        return _all_pages(
            lambda n, token: self.transport.search_model_versions(
                filter_string=filter_string, order_by=order_by, max_results=n, page_token=token
            ),
            max_results,
        )

    def update_model_version(self, name: str, version: int, description: str) -> ModelVersion:
        return self.transport.update_model_version(name, int(version), description=description)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.transport.set_model_version_tag(name, int(version), key, str(value))

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        self.transport.set_model_version_tag(name, int(version), key, None)

    def delete_model_version(self, name: str, version: int, force: bool = False) -> None:
        self.transport.delete_model_version(name, int(version), force=force)

    # -- aliases ---------------------------------------------------------------------------
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        protect: bool | None = None,
        reason: str = "",
    ) -> Alias:
        return self.transport.set_alias(name, alias, int(version), protect=protect, reason=reason)

    def delete_alias(self, name: str, alias: str) -> None:
        self.transport.delete_alias(name, alias)

    def list_aliases(self, name: str) -> list[Alias]:
        return self.transport.list_aliases(name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return self.transport.alias_history(name, alias)

    # -- reviews ---------------------------------------------------------------------------
    def request_review(self, name: str, version: int, comment: str = "") -> Review:
        return self.transport.review(name, int(version), "requested", comment=comment)

    def approve(self, name: str, version: int, comment: str = "") -> Review:
        return self.transport.review(name, int(version), "approved", comment=comment)

    def reject(self, name: str, version: int, comment: str = "") -> Review:
        return self.transport.review(name, int(version), "rejected", comment=comment)

    def list_reviews(self, name: str, version: int) -> list[Review]:
        return self.transport.list_reviews(name, int(version))

    # -- lineage, comparison, files ----------------------------------------------------------
    def lineage(self, ref: str) -> VersionLineage:
        return self.transport.lineage(ref)

    def compare_versions(self, name: str, a: int | str, b: int | str) -> VersionComparison:
        return self.transport.compare_versions(name, a, b)

    def download_model(self, uri: str, dest: str | os.PathLike[str] | None = None) -> Path:
        """Materialise a model's files under ``dest`` (a new temporary folder when None).

        Every file's digest is checked as it is written; a mismatch raises
        :class:`~loopline.errors.IntegrityError` naming the file, and leaves no
        partial file behind.
        """
        import tempfile

        from loopline.store.paths import safe_relpath

        found = self.transport.model_files(uri)
        target = (
            Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="loopline-model-"))
        )
        target.mkdir(parents=True, exist_ok=True)
        for file in found.files:
            self.transport.fetch_model_file(found.uri, file, target / safe_relpath(file.path))
        return target

    # -- MLflow 3 logged models --------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        *,
        source_run_id: str | None = None,
        model_type: str = "",
        flavor: str = "",
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> LoggedModel:
        return self.transport.create_logged_model(
            str(experiment_id),
            name=name,
            source_run_id=source_run_id,
            model_type=model_type,
            flavor=flavor,
            params=params,
            tags=tags,
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.transport.get_logged_model(model_id)

    def log_logged_model_files(self, model_id: str, local_dir: str | os.PathLike[str]) -> None:
        """Upload a folder's files as the logged model's files."""
        root = Path(local_dir)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            self.transport.put_logged_model_file(model_id, file.relative_to(root).as_posix(), file)

    def finalize_logged_model(self, model_id: str, status: str = "READY") -> LoggedModel:
        return self.transport.finalize_logged_model(model_id, status)

"""The registry's transport interface: how the registry SDK reaches a store.

:class:`~loopline.registry.service.RegistryService` works on the metadata database
and blob store directly (the embedded store, and what the server answers with);
:class:`~loopline.registry.http.RegistryHttpClient` talks to ``loopline server``'s
``/api/v1/registry``. Both pass the same contract tests.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.registry.entities import (
        Alias,
        AliasChange,
        LoggedModel,
        ModelFile,
        ModelFiles,
        ModelVersion,
        RegisteredModel,
        Review,
        VersionComparison,
        VersionLineage,
    )

__all__ = ["Page", "RegistryTransport"]

Page = tuple[list[Any], str | None]
"""One page of results and the token of the next page (None on the last)."""


class RegistryTransport(abc.ABC):
    user: str
    project: str

    # -- registered models ---------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> RegisteredModel: ...

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        require_approval: bool | None = None,
        new_name: str | None = None,
    ) -> RegisteredModel: ...

    @abc.abstractmethod
    def delete_registered_model(self, name: str, *, force: bool = False) -> None: ...

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set a tag (``value=None`` deletes it)."""

    @abc.abstractmethod
    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page: ...

    # -- versions ------------------------------------------------------------------------
    @abc.abstractmethod
    def register_model(
        self,
        uri: str,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """A new version of ``name`` (created when missing) from a model URI."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def resolve(self, ref: str) -> ModelVersion:
        """``NAME@3``, ``NAME@alias``, ``NAME@latest``, ``NAME@sha:…`` or a ``models:/`` URI."""

    @abc.abstractmethod
    def search_model_versions(
        self,
        *,
        name: str | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page: ...

    @abc.abstractmethod
    def update_model_version(
        self, name: str, version: int, *, description: str
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def set_model_version_tag(
        self, name: str, version: int, key: str, value: str | None
    ) -> None: ...

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None: ...

    # -- aliases -------------------------------------------------------------------------
    @abc.abstractmethod
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        protect: bool | None = None,
        reason: str = "",
    ) -> Alias: ...

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def list_aliases(self, name: str) -> list[Alias]: ...

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]: ...

    # -- reviews, lineage, comparison ------------------------------------------------------
    @abc.abstractmethod
    def review(self, name: str, version: int, decision: str, *, comment: str = "") -> Review:
        """Record ``requested``, ``approved`` or ``rejected`` for a version."""

    @abc.abstractmethod
    def list_reviews(self, name: str, version: int) -> list[Review]: ...

    @abc.abstractmethod
    def lineage(self, ref: str) -> VersionLineage: ...

    @abc.abstractmethod
    def compare_versions(self, name: str, a: int | str, b: int | str) -> VersionComparison: ...

    # -- files -----------------------------------------------------------------------------
    @abc.abstractmethod
    def model_files(self, uri: str) -> ModelFiles:
        """The files behind ``models:/…`` or ``runs:/…``, with the URI pinned."""

    @abc.abstractmethod
    def fetch_model_file(self, pinned_uri: str, file: ModelFile, target: Path) -> None:
        """Write one file of a pinned model URI to ``target``, verifying its digest."""

    # -- MLflow 3 logged models --------------------------------------------------------------
    @abc.abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        *,
        name: str,
        source_run_id: str | None = None,
        model_type: str = "",
        flavor: str = "",
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> LoggedModel: ...

    @abc.abstractmethod
    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel: ...

    @abc.abstractmethod
    def search_logged_models(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page: ...

    @abc.abstractmethod
    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel: ...

    @abc.abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None: ...

    @abc.abstractmethod
    def delete_logged_model(self, model_id: str) -> None: ...

    @abc.abstractmethod
    def put_logged_model_file(self, model_id: str, path: str, source: Path | bytes) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

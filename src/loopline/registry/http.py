"""The registry over HTTP: :class:`RegistryHttpClient` calls ``/api/v1/registry`` of a server.

It follows :class:`~loopline.client.http.HttpTransport`'s conventions: one
keep-alive :class:`httpx.Client`, the caller's identity in ``X-Loopline-User`` /
``X-Loopline-Project`` (and a bearer token), error bodies rebuilt into the matching
:class:`~loopline.errors.LooplineError`. Retries differ on purpose: registry writes
are not idempotent (registering twice makes two versions), so reads are retried on
connection errors and 5xx, writes only when the connection could not be made.

>>> c = RegistryHttpClient("http://127.0.0.1:5000/", user="ada")
>>> c.base_url, c.headers["x-loopline-user"]
('http://127.0.0.1:5000', 'ada')
>>> c.close()
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopline.client.session import ApiSession
from loopline.errors import IntegrityError
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
from loopline.registry.transport import Page, RegistryTransport
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

__all__ = ["RegistryHttpClient"]

API = "/api/v1/registry"
DIGEST_HEADER = "x-loopline-digest"
_CHUNK = 1024 * 1024


class RegistryHttpClient(ApiSession, RegistryTransport):
    """Every :class:`~loopline.registry.transport.RegistryTransport` method over HTTP."""

    server_hint = "is this URL a loopline server with the registry API?"

    prefix = API

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "tags": tags,
            "require_approval": require_approval,
        }
        return RegisteredModel.from_dict(self._call("POST", "/models", json=body)["model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_dict(
            self._call("GET", "/model", params={"name": name})["model"]
        )

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        require_approval: bool | None = None,
        new_name: str | None = None,
    ) -> RegisteredModel:
        body = {
            "description": description,
            "require_approval": require_approval,
            "new_name": new_name,
        }
        found = self._call("PATCH", "/model", params={"name": name}, json=body)
        return RegisteredModel.from_dict(found["model"])

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", "/model", params={"name": name, "force": _flag(force)})

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        self._call("PUT", "/model/tags", params={"name": name}, json={"key": key, "value": value})

    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page:
        params = {
            "filter": filter_string,
            "order_by": order_by,
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self._call("GET", "/models", params=params)
        return [RegisteredModel.from_dict(m) for m in found["models"]], found["next_page_token"]

    # -- versions ------------------------------------------------------------------------
    def register_model(
        self,
        uri: str,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        body = {"uri": uri, "name": name, "tags": tags, "description": description}
        return ModelVersion.from_dict(self._call("POST", "/versions", json=body)["version"])

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        found = self._call("GET", "/version", params={"name": name, "version": version})
        return ModelVersion.from_dict(found["version"])

    def resolve(self, ref: str) -> ModelVersion:
        return ModelVersion.from_dict(self._call("GET", "/resolve", params={"ref": ref})["version"])

    def search_model_versions(
        self,
        *,
        name: str | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        params = {
            "name": name,
            "filter": filter_string,
            "order_by": order_by,
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self._call("GET", "/versions", params=params)
        return [ModelVersion.from_dict(v) for v in found["versions"]], found["next_page_token"]

    def update_model_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        found = self._call(
            "PATCH",
            "/version",
            params={"name": name, "version": version},
            json={"description": description},
        )
        return ModelVersion.from_dict(found["version"])

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        self._call(
            "PUT",
            "/version/tags",
            params={"name": name, "version": version},
            json={"key": key, "value": value},
        )

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        params = {"name": name, "version": version, "force": _flag(force)}
        self._call("DELETE", "/version", params=params)

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
        body = {"version": version, "protect": protect, "reason": reason}
        found = self._call("PUT", "/aliases", params={"name": name, "alias": alias}, json=body)
        return Alias.from_dict(found["alias"])

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "/aliases", params={"name": name, "alias": alias})

    def list_aliases(self, name: str) -> list[Alias]:
        found = self._call("GET", "/aliases", params={"name": name})
        return [Alias.from_dict(a) for a in found["aliases"]]

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        found = self._call("GET", "/aliases/history", params={"name": name, "alias": alias})
        return [AliasChange.from_dict(h) for h in found["history"]]

    # -- reviews, lineage, comparison ------------------------------------------------------
    def review(self, name: str, version: int, decision: str, *, comment: str = "") -> Review:
        found = self._call(
            "POST",
            "/reviews",
            params={"name": name, "version": version},
            json={"decision": decision, "comment": comment},
        )
        return Review.from_dict(found["review"])

    def list_reviews(self, name: str, version: int) -> list[Review]:
        found = self._call("GET", "/reviews", params={"name": name, "version": version})
        return [Review.from_dict(r) for r in found["reviews"]]

    def lineage(self, ref: str) -> VersionLineage:
        return VersionLineage.from_dict(
            self._call("GET", "/lineage", params={"ref": ref})["lineage"]
        )

    def compare_versions(self, name: str, a: int | str, b: int | str) -> VersionComparison:
        found = self._call("GET", "/compare", params={"name": name, "a": str(a), "b": str(b)})
        return VersionComparison.from_dict(found["comparison"])

    # -- files -----------------------------------------------------------------------------
    def model_files(self, uri: str) -> ModelFiles:
        return ModelFiles.from_dict(self._call("GET", "/files", params={"uri": uri})["files"])

    def fetch_model_file(self, pinned_uri: str, file: ModelFile, target: Path) -> None:
        url = f"/files/{quote(safe_relpath(file.path), safe='/')}"

        def attempt() -> None:
            _stream_to(self._http, self._check, url, {"uri": pinned_uri}, file, Path(target))

        self._retrying(attempt, idempotent=True)

    # -- MLflow 3 logged models --------------------------------------------------------------
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
    ) -> LoggedModel:
        body = {
            "experiment_id": str(experiment_id),
            "name": name,
            "source_run_id": source_run_id,
            "model_type": model_type,
            "flavor": flavor,
            "params": params,
            "tags": tags,
        }
        return LoggedModel.from_dict(
            self._call("POST", "/logged-models", json=body)["logged_model"]
        )

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        found = self._call(
            "GET",
            f"/logged-models/{_seg(model_id)}",
            params={"allow_deleted": _flag(allow_deleted)},
        )
        return LoggedModel.from_dict(found["logged_model"])

    def search_logged_models(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "order_by": order_by,
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self._call("POST", "/logged-models/search", json=body)
        return [LoggedModel.from_dict(m) for m in found["logged_models"]], found["next_page_token"]

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        found = self._call("PATCH", f"/logged-models/{_seg(model_id)}", json={"status": status})
        return LoggedModel.from_dict(found["logged_model"])

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._call("PUT", f"/logged-models/{_seg(model_id)}/tags", json={"tags": tags})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._call("DELETE", f"/logged-models/{_seg(model_id)}/tags", params={"key": key})

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self._call("POST", f"/logged-models/{_seg(model_id)}/params", json={"params": params})

    def delete_logged_model(self, model_id: str) -> None:
        self._call("DELETE", f"/logged-models/{_seg(model_id)}")

    def put_logged_model_file(self, model_id: str, path: str, source: Path | bytes) -> None:
        url = f"/logged-models/{_seg(model_id)}/files/{quote(safe_relpath(path), safe='/')}"
        headers = {"content-type": "application/octet-stream"}

        def attempt() -> None:
            if isinstance(source, bytes):
                self._check(self._http.put(url, content=source, headers=headers))
                return
            with open(source, "rb") as handle:  # reopened per try, streamed, never in memory
                size = os.fstat(handle.fileno()).st_size
                sized = {**headers, "content-length": str(size)}
                self._check(self._http.put(url, content=_chunks(handle), headers=sized))

        self._retrying(attempt, idempotent=True)  # the same bytes at the same path


def _chunks(handle: Any) -> Any:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _flag(value: bool) -> str | None:
    return "true" if value else None


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _stream_to(
    http: httpx.Client,
    check: Callable[[httpx.Response], httpx.Response],
    url: str,
    params: dict[str, str],
    file: ModelFile,
    target: Path,
) -> None:
    """Stream one file to ``target`` atomically, checking its digest."""
    from loopline.store.digest import Hasher

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        hasher = Hasher()
        with os.fdopen(fd, "wb") as out, http.stream("GET", url, params=params) as response:
            check(response)
            for chunk in response.iter_bytes(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        actual = f"blake3:{hasher.hexdigest()}"
        if actual != file.digest:
            raise IntegrityError(
                f"model file {file.path!r} failed digest verification "
                f"(expected {file.digest}, received {actual})",
                hint="retry the download; if it persists, the server's blob store is damaged",
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

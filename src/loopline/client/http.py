"""The HTTP transport: the SDK talking to a ``loopline server`` over its native API.

One keep-alive :class:`httpx.Client` carries every call (see
:class:`~loopline.client.session.ApiSession`). Reads and batch writes are retried
on connection failures and 5xx answers with exponential backoff (0.1 s doubling,
capped at 2 s, 8 tries by default); that is safe for batch writes because the
server skips a ``RunWrites.batch_id`` it has already applied. Error bodies come back as the
matching :class:`~loopline.errors.LooplineError` subclass.

>>> t = HttpTransport("http://127.0.0.1:5000/", user="ada", token="s3cret")
>>> t.describe()
{'kind': 'http', 'url': 'http://127.0.0.1:5000'}
>>> sorted(k for k in t.headers if k.startswith(("authorization", "x-loopline")))
['authorization', 'x-loopline-project', 'x-loopline-user']
>>> t.close()
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import orjson

from loopline.client.session import ApiSession
from loopline.client.transport import SearchPage, Transport
from loopline.errors import (
    IntegrityError,
    LooplineError,
    NotFoundError,
    error_from_code,
)
from loopline.store.paths import safe_relpath
from loopline.tracking.entities import ArtifactFile, Experiment, Metric, Run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.events import Event
    from loopline.tracking.entities import RunWrites

__all__ = ["HttpTransport"]

T = TypeVar("T")

API = "/api/v1"
DIGEST_HEADER = "x-loopline-digest"
_CHUNK = 1024 * 1024


class HttpTransport(ApiSession, Transport):
    """Every :class:`~loopline.client.transport.Transport` method over ``/api/v1``."""

    prefix = API

    def describe(self) -> dict[str, Any]:
        return {"kind": "http", "url": self.base_url}

    def _decode_error(
        self, code: str, message: str, hint: str | None, body: dict[str, Any]
    ) -> LooplineError:
        if "conflicts" in body:
            return _param_conflict(message, hint, body["conflicts"])
        return error_from_code(code, message, hint)

    # -- experiments ---------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> str:
        body = {
            "name": name,
            "description": description,
            "tags": tags,
            "artifact_location": artifact_location,
        }
        return str(self._call("POST", "/experiments", json=body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self._call("GET", f"/experiments/{_seg(experiment_id)}")
        return Experiment.from_dict(found["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            found = self._call("GET", "/experiments/by-name", params={"name": name})
        except NotFoundError:
            return None
        return Experiment.from_dict(found["experiment"])

    def list_experiments(
        self, *, view: str = "active", name_like: str | None = None
    ) -> list[Experiment]:
        params = {"view": view} | ({"name_like": name_like} if name_like is not None else {})
        found = self._call("GET", "/experiments", params=params)
        return [Experiment.from_dict(e) for e in found["experiments"]]

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        body = {"name": name, "description": description}
        self._call("PATCH", f"/experiments/{_seg(experiment_id)}", json=body)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("DELETE", f"/experiments/{_seg(experiment_id)}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{_seg(experiment_id)}/restore")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        body = {"key": key, "value": value}
        self._call("POST", f"/experiments/{_seg(experiment_id)}/tags", json=body)

    # -- runs ----------------------------------------------------------------------
    def write(self, batch: RunWrites) -> None:
        # Safe to retry whatever happened: the server skips a batch id it has applied.
        self._call(
            "POST",
            "/writes",
            content=encode_writes(batch),
            headers={"content-type": "application/json"},
            idempotent=True,
        )

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._call("GET", f"/runs/{_seg(run_id)}")["run"])

    def search_runs(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        view: str = "active",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> SearchPage:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "order_by": order_by,
            "view": view,
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self._call("POST", "/runs/search", json=body)
        return [Run.from_dict(r) for r in found["runs"]], found["next_page_token"]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        found = self._call("GET", f"/runs/{_seg(run_id)}/metric-history", params={"key": key})
        return [Metric.from_dict(m) for m in found["metrics"]]

    def delete_run(self, run_id: str) -> None:
        self._call("DELETE", f"/runs/{_seg(run_id)}")

    def restore_run(self, run_id: str) -> None:
        self._call("POST", f"/runs/{_seg(run_id)}/restore")

    # -- artifacts -----------------------------------------------------------------
    def _artifact_url(self, run_id: str, path: str) -> str:
        return f"/runs/{_seg(run_id)}/artifacts/{quote(safe_relpath(path), safe='/')}"

    def put_artifact(self, run_id: str, path: str, source: Path | bytes) -> None:
        url = self._artifact_url(run_id, path)
        headers = {"content-type": "application/octet-stream"}
        if isinstance(source, bytes):
            self._call("PUT", url, content=source, headers=headers)
            return
        source = Path(source)

        def attempt() -> None:
            # Reopened on every try, and streamed: the file never sits in memory.
            with open(source, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                response = self._http.put(
                    url,
                    content=_read_chunks(handle),
                    headers={**headers, "content-length": str(size)},
                )
                self._check(response)

        self._retrying(attempt)

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactFile]:
        found = self._call("GET", f"/runs/{_seg(run_id)}/artifacts", params={"path": path})
        return [ArtifactFile(**f) for f in found["files"]]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        url = self._artifact_url(run_id, path)

        def attempt() -> bytes:
            response = self._check(self._http.get(url))
            _verify(response.content, response.headers.get(DIGEST_HEADER), path)
            return response.content

        return self._retrying(attempt)

    def download_artifacts(self, run_id: str, path: str, dest: Path) -> Path:
        path = safe_relpath(path, allow_empty=True)
        found = self._call(
            "GET",
            f"/runs/{_seg(run_id)}/artifacts",
            params={"path": path, "recursive": "true"},
        )
        files = [ArtifactFile(**f) for f in found["files"]]
        if not files:
            raise NotFoundError(f"artifact {path!r} does not exist in run {run_id}")
        # As MLflow does: the artifact keeps its relative path under ``dest``.
        dest = Path(dest)
        for file in files:
            target = dest / safe_relpath(file.path)
            self._retrying(functools.partial(self._download, run_id, file, target))
        return dest / path if path else dest

    def _download(self, run_id: str, file: ArtifactFile, target: Path) -> None:
        """Stream one file to ``target`` atomically, checking its digest."""
        from loopline.store.digest import Hasher

        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            hasher = Hasher()
            with (
                os.fdopen(fd, "wb") as out,
                self._http.stream("GET", self._artifact_url(run_id, file.path)) as response,
            ):
                self._check(response)
                for chunk in response.iter_bytes(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            expected = file.digest or response.headers.get(DIGEST_HEADER)
            _check_digest(f"blake3:{hasher.hexdigest()}", expected, file.path)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # -- events --------------------------------------------------------------------
    def events(
        self, *, after_id: int = 0, kinds: list[str] | None = None, limit: int = 1000
    ) -> list[Event]:
        from loopline.events import Event

        params: dict[str, Any] = {"after_id": after_id, "limit": limit}
        if kinds:
            params["kinds"] = list(kinds)
        found = self._call("GET", "/events", params=params)
        return [Event(**e) for e in found["events"]]


# -- helpers ---------------------------------------------------------------------------
def encode_writes(batch: RunWrites) -> bytes:
    """The JSON body of a batch (NaN and infinities as strings, as JSON has none).

    >>> from loopline.tracking.entities import RunWrites
    >>> b = RunWrites("b1", metrics=[("r", "loss", float("nan"), 1, 0), ("r", "loss", 0.5, 2, 1)])
    >>> orjson.loads(encode_writes(b))["metrics"]
    [['r', 'loss', 'NaN', 1, 0], ['r', 'loss', 0.5, 2, 1]]
    """
    return orjson.dumps(batch.to_dict())


def _seg(value: str) -> str:
    """One URL path segment (ids are plain, but never trust that)."""
    return quote(str(value), safe="")


def _read_chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _verify(data: bytes, expected: str | None, path: str) -> None:
    if not expected:
        return
    from loopline.store.digest import Hasher

    hasher = Hasher()
    hasher.update(data)
    _check_digest(f"blake3:{hasher.hexdigest()}", expected, path)


def _check_digest(actual: str, expected: str | None, path: str) -> None:
    if expected and expected != actual:
        raise IntegrityError(
            f"artifact {path!r} arrived damaged (expected {expected}, received {actual})",
            hint="retry the download; if it persists, the server's blob store is corrupt",
        )


def _param_conflict(message: str, hint: str | None, conflicts: list[list[str]]) -> LooplineError:
    """Rebuild the store's ParamConflictError, so the SDK's writer can drop exactly those."""
    from loopline.tracking.store import ParamConflictError

    error = ParamConflictError.__new__(ParamConflictError)
    LooplineError.__init__(error, message, hint=hint)
    error.conflicts = [(str(r), str(k)) for r, k in conflicts]
    return error

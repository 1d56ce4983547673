"""The registry service: validation, model sources and blobs over the SQL registry store.

It is the embedded registry transport and what the server answers with, so local
and remote use run the same checks.

>>> import tempfile
>>> from loopline.store.blobs import open_blob_store
>>> from loopline.store.metadata import Database
>>> home = tempfile.mkdtemp()
>>> svc = RegistryService(Database(f"sqlite:///{home}/m.db"), open_blob_store(home + "/blobs"))
>>> svc.create_registered_model("churn", description="who leaves").name
'churn'
>>> svc.search_registered_models()[0][0].description
'who leaves'
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import (
    IntegrityError,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
)
from loopline.refs import check_label, check_name, parse_model_uri, parse_ref
from loopline.registry import _meta
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
from loopline.registry.logged import STATUSES, LoggedModelStore
from loopline.registry.store import NewVersion, RegistryStore
from loopline.registry.transport import Page, RegistryTransport
from loopline.store.digest import Digest
from loopline.store.paths import safe_relpath

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopline.refs import ModelUri
    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["DECISIONS", "LIMITS", "RegistryService"]

DECISIONS = ("requested", "approved", "rejected")


class LIMITS:
    description = 100_000
    comment = 10_000
    tag_value = 8_000
    search_results = 10_000


def _check_text(value: str, limit: int, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise LimitExceededError(f"the {what} is {len(value)} characters; the limit is {limit}")
    return value


def _check_tags(tags: dict[str, str] | None) -> dict[str, str]:
    from loopline.tracking.service import check_key

    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        check_key(key, "tag")
        out[key] = _check_text(str(value), LIMITS.tag_value, f"value of tag {key!r}")
    return out


def _check_version(version: int | str) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"a version number is an integer, got {version!r}") from None
    if number < 1:
        raise InvalidArgumentError(f"version numbers start at 1, got {number}")
    return number


def _max_results(value: int) -> int:
    if not 0 < value <= LIMITS.search_results:
        raise LimitExceededError(
            f"max_results must be between 1 and {LIMITS.search_results}, got {value}"
        )
    return value


def _page(found: list[Any], offset: int, max_results: int) -> Page:
    from loopline.tracking.search import encode_page_token

    more = len(found) > max_results
    return found[:max_results], encode_page_token(offset + max_results) if more else None


class RegistryService(RegistryTransport):
    """The registry over a metadata database and a blob store."""

    def __init__(
        self, db: Database, blobs: BlobStore, *, user: str = "unknown", project: str = "default"
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.store = RegistryStore(db)
        self.logged = LoggedModelStore(db)
        self.user = user
        self.project = project

    def for_user(self, user: str, project: str | None = None) -> RegistryService:
        """The same service acting for another caller (the server does this per request)."""
        clone = copy.copy(self)
        clone.user = user
        clone.project = project or self.project
        return clone

    def close(self) -> None:
        self.db.close()
        self.blobs.close()

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> RegisteredModel:
        return self.store.create_model(
            check_name(name, "model name"),
            project=self.project,
            description=_check_text(description, LIMITS.description, "description"),
            tags=_check_tags(tags),
            require_approval=bool(require_approval),
            actor=self.user,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_model(name, project=self.project)

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        require_approval: bool | None = None,
        new_name: str | None = None,
    ) -> RegisteredModel:
        if description is not None:
            _check_text(description, LIMITS.description, "description")
        if new_name is not None:
            check_name(new_name, "model name")
        return self.store.update_model(
            name,
            project=self.project,
            actor=self.user,
            description=description,
            require_approval=require_approval,
            new_name=new_name,
        )

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        self.store.delete_model(name, project=self.project, actor=self.user, force=force)

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        checked = _check_tags({key: value or ""})
        self.store.set_model_tag(
            name,
            key,
            None if value is None else checked[key],
            project=self.project,
            actor=self.user,
        )

    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page:
        from loopline.tracking.search import decode_page_token

        offset = decode_page_token(page_token)
        found = self.store.search_models(
            project=self.project,
            filter_string=filter_string,
            order_by=order_by,
            limit=_max_results(max_results) + 1,
            offset=offset,
        )
        return _page(found, offset, max_results)

    # -- versions ------------------------------------------------------------------------
    def register_model(
        self,
        uri: str,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        check_name(name, "model name")
        new = self._new_version(uri)
        new.tags = _check_tags(tags)
        new.description = _check_text(description, LIMITS.description, "description")
        return self.store.create_version(name, new, project=self.project, actor=self.user)

    def _new_version(self, uri: str) -> NewVersion:
        """Where a new version's files come from, and what their description file says."""
        _, files, run_id, logged_id = self._source_files(uri)
        if not files:
            raise NotFoundError(
                f"{uri} holds no files to register",
                hint="log the model first (loopline.log_model), then register its URI",
            )
        by_path = {f.path: (f.digest, f.size) for f in files}
        meta = _meta.load_meta(by_path, lambda d: self.blobs.get_bytes(Digest.parse(d)))
        _meta.check_digests(meta, by_path, uri)
        return NewVersion(
            source=uri,
            files=[(f.path, f.digest, f.size) for f in files],
            run_id=run_id,
            logged_model_id=logged_id,
            flavor=meta.flavor,
            signature=meta.signature,
        )

    def _source_files(self, uri: str) -> tuple[str, list[ModelFile], str | None, str | None]:
        """(pinned URI, files relative to the model's folder, run id, logged model id)."""
        parsed = parse_model_uri(uri)
        if parsed.kind == "registered":
            version = self._resolve_parsed(parsed)
            _, rows = self.store.version_files(version.name, version.version, project=self.project)
            return version.uri, _files(rows), version.run_id, version.logged_model_id
        if parsed.kind == "logged":
            logged = self.logged.get(parsed.name)
            return (
                logged.uri,
                self._root_files(logged.root, ""),
                logged.source_run_id,
                logged.model_id,
            )
        if parsed.kind == "run":
            assert parsed.run_id is not None
            self._tracking().get_run(parsed.run_id)  # a clear 404 for an unknown run
            path = safe_relpath(parsed.path, allow_empty=True)
            files = self._root_files(f"runs/{parsed.run_id}", path)
            # MLflow 3 keeps a run's model as a logged model named after the path.
            found = self.logged.of_run(parsed.run_id, path) if path else []
            if files:  # loopline's log_model stores both: the logged model when they match
                same = [m for m in found if _same_files(files, self._root_files(m.root, ""))]
                return uri, files, parsed.run_id, same[0].model_id if same else None
            if found:
                return (
                    found[0].uri,
                    self._root_files(found[0].root, ""),
                    parsed.run_id,
                    found[0].model_id,
                )
            return uri, [], parsed.run_id, None
        raise InvalidArgumentError(
            f"cannot register {uri!r}: the registry takes runs:/, models:/ and models:/m- URIs",
            hint="log the model to a run first (loopline.log_model), then register runs:/RUN/PATH",
        )

    def _root_files(self, root: str, prefix: str) -> list[ModelFile]:
        """Files at or below ``prefix`` of a manifest root, with paths relative to ``prefix``."""
        from loopline.tracking.store import TrackingStore

        found = TrackingStore(self.db).artifact_files(root, prefix)
        out: list[ModelFile] = []
        for path, digest, size in found:
            if prefix and path == prefix:
                rel = path.rpartition("/")[2]
            elif prefix:
                rel = path[len(prefix) + 1 :]
            else:
                rel = path
            out.append(ModelFile(rel, digest, size))
        return out

    def _tracking(self) -> Any:
        from loopline.tracking.store import TrackingStore

        return TrackingStore(self.db)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.store.get_version(name, _check_version(version), project=self.project)

    def resolve(self, ref: str) -> ModelVersion:
        if not isinstance(ref, str):
            raise InvalidArgumentError(f"a model reference is text, got {type(ref).__name__}")
        if ref.startswith(("models:", "runs:")):
            parsed = parse_model_uri(ref)
            if parsed.kind != "registered":
                raise InvalidArgumentError(
                    f"{ref} is not a registered model version",
                    hint="use models:/NAME/VERSION or models:/NAME@ALIAS",
                )
            return self._resolve_parsed(parsed)
        return self._resolve_ref(ref)

    def _resolve_parsed(self, parsed: ModelUri) -> ModelVersion:
        assert parsed.ref is not None
        return self._resolve_ref(str(parsed.ref))

    def _resolve_ref(self, text: str) -> ModelVersion:
        ref = parse_ref(text)
        if ref.kind == "version":
            return self.store.get_version(ref.name, ref.version, project=self.project)
        if ref.kind == "alias":
            return self.store.version_by_alias(ref.name, ref.value, project=self.project)
        if ref.kind == "digest":
            return self.store.version_by_digest(ref.name, ref.value, project=self.project)
        return self.store.latest_version(ref.name, project=self.project)

    def search_model_versions(
        self,
        *,
        name: str | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        from loopline.tracking.search import decode_page_token

        offset = decode_page_token(page_token)
        found = self.store.search_versions(
            project=self.project,
            name=name,
            filter_string=filter_string,
            order_by=order_by,
            limit=_max_results(max_results) + 1,
            offset=offset,
        )
        return _page(found, offset, max_results)

    def update_model_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        return self.store.update_version(
            name,
            _check_version(version),
            description=_check_text(description, LIMITS.description, "description"),
            project=self.project,
            actor=self.user,
        )

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        checked = _check_tags({key: value or ""})
        self.store.set_version_tag(
            name,
            _check_version(version),
            key,
            None if value is None else checked[key],
            project=self.project,
            actor=self.user,
        )

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        self.store.delete_version(
            name, _check_version(version), project=self.project, actor=self.user, force=force
        )

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
        with self.db.write() as conn:
            return self.set_alias_in(conn, name, alias, version, protect=protect, reason=reason)

    def set_alias_in(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int,
        *,
        protect: bool | None = None,
        reason: str = "",
    ) -> Alias:
        """:meth:`set_alias` inside the caller's transaction ``conn`` (same database): a
        deployment's promotion moves the alias in the transaction that ends its canary."""
        return self.store.set_alias_in(
            conn,
            name,
            check_label(alias, "alias"),
            _check_version(version),
            project=self.project,
            actor=self.user,
            protect=protect,
            reason=_check_text(reason, LIMITS.comment, "reason"),
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias, project=self.project, actor=self.user)

    def list_aliases(self, name: str) -> list[Alias]:
        return self.store.aliases(name, project=self.project)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return self.store.alias_history(name, alias, project=self.project)

    # -- reviews, lineage, comparison ------------------------------------------------------
    def review(self, name: str, version: int, decision: str, *, comment: str = "") -> Review:
        if decision not in DECISIONS:
            raise InvalidArgumentError(
                f"unknown review decision {decision!r}", hint=f"use one of {', '.join(DECISIONS)}"
            )
        comment = _check_text(comment, LIMITS.comment, "comment")
        number = _check_version(version)
        if decision == "requested":
            return self.store.request_review(
                name, number, comment=comment, project=self.project, actor=self.user
            )
        return self.store.decide(
            name, number, decision, comment=comment, project=self.project, actor=self.user
        )

    def list_reviews(self, name: str, version: int) -> list[Review]:
        return self.store.reviews(name, _check_version(version), project=self.project)

    def lineage(self, ref: str) -> VersionLineage:
        from loopline.registry._lineage import version_lineage

        version = self.resolve(ref)
        with self.db.read() as conn:
            return version_lineage(conn, version)

    def compare_versions(self, name: str, a: int | str, b: int | str) -> VersionComparison:
        from loopline.registry._lineage import comparison_rows

        left = self._resolve_ref(f"{name}@{a}")
        right = self._resolve_ref(f"{name}@{b}")
        with self.db.read() as conn:
            return VersionComparison(left, right, comparison_rows(conn, left, right))

    # -- files -----------------------------------------------------------------------------
    def model_files(self, uri: str) -> ModelFiles:
        parsed = parse_model_uri(uri)
        if parsed.kind == "registered":
            version = self._resolve_parsed(parsed)
            _, rows = self.store.version_files(version.name, version.version, project=self.project)
            return ModelFiles(version.uri, version.ref, _files(rows))
        if parsed.kind == "path":
            raise InvalidArgumentError(
                f"{uri!r} is a local path, not a stored model",
                hint="use models:/NAME@ALIAS, models:/NAME/VERSION, models:/m-ID or runs:/RUN/PATH",
            )
        pinned, files, _, _ = self._source_files(uri)
        if not files:
            raise NotFoundError(f"{uri} holds no files")
        return ModelFiles(pinned, pinned, files)

    def _root_of(self, pinned_uri: str) -> tuple[str, str]:
        """(manifest root, path prefix) of a pinned URI."""
        parsed = parse_model_uri(pinned_uri)
        if parsed.kind == "registered":
            version = self._resolve_parsed(parsed)
            return version.root, ""
        if parsed.kind == "logged":
            return self.logged.get(parsed.name).root, ""
        if parsed.kind == "run":
            return f"runs/{parsed.run_id}", safe_relpath(parsed.path, allow_empty=True)
        raise InvalidArgumentError(f"{pinned_uri!r} names no stored model")

    def file_entry(self, pinned_uri: str, path: str) -> ModelFile:
        """One file of a pinned URI, as the manifest records it (NotFound when absent)."""
        root, prefix = self._root_of(pinned_uri)
        rel = safe_relpath(path)
        for candidate in self._root_files(root, prefix):
            if candidate.path == rel:
                return candidate
        raise NotFoundError(f"{pinned_uri} has no file {rel!r}")

    def fetch_model_file(self, pinned_uri: str, file: ModelFile, target: Path) -> None:
        digest = Digest.parse(file.digest)
        object_path = getattr(self.blobs, "object_path", None)
        try:
            if object_path is not None:  # a local store: the kernel copies, blake3 verifies
                _copy_verified(object_path(digest), Path(target), digest)
            else:
                self.blobs.get_file(digest, Path(target), verify=True)
        except IntegrityError as exc:
            raise IntegrityError(
                f"model file {file.path!r} of {pinned_uri} failed digest verification "
                f"(expected {file.digest})",
                hint="the blob store is damaged: restore the blob, or register the model again",
            ) from exc
        except NotFoundError as exc:
            raise NotFoundError(
                f"model file {file.path!r} of {pinned_uri} is missing from the blob store",
                hint=exc.hint,
            ) from exc

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
        from loopline.tracking.service import check_key

        if not name or len(name) > 256:
            raise InvalidArgumentError("a logged model's name is 1 to 256 characters")
        if source_run_id:
            self._tracking().get_run(source_run_id)
        for key in params or {}:
            check_key(key, "param")
        return self.logged.create(
            experiment_id=str(experiment_id),
            name=name,
            source_run_id=source_run_id or None,
            model_type=model_type[:64],
            flavor=flavor[:64],
            params={k: str(v) for k, v in (params or {}).items()},
            tags=_check_tags(tags),
            actor=self.user,
        )

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        return self.logged.get(model_id, allow_deleted=allow_deleted)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page:
        from loopline.tracking.search import decode_page_token

        offset = decode_page_token(page_token)
        found = self.logged.search(
            experiment_ids=[str(e) for e in experiment_ids],
            filter_string=filter_string,
            order_by=order_by,
            limit=_max_results(max_results) + 1,
            offset=offset,
        )
        return _page(found, offset, max_results)

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        if status not in STATUSES:
            raise InvalidArgumentError(
                f"unknown logged model status {status!r}", hint=f"use {', '.join(STATUSES)}"
            )
        flavor = None
        if status == "READY":
            logged = self.logged.get(model_id)
            files = {f.path: (f.digest, f.size) for f in self._root_files(logged.root, "")}
            flavor = _meta.load_meta(files, lambda d: self.blobs.get_bytes(Digest.parse(d))).flavor
        return self.logged.finalize(model_id, status, flavor=flavor, actor=self.user)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self.logged.set_tags(model_id, _check_tags(tags), actor=self.user)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.logged.delete_tag(model_id, key, actor=self.user)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        from loopline.tracking.service import check_key

        for key in params:
            check_key(key, "param")
        self.logged.log_params(model_id, {k: str(v) for k, v in params.items()}, actor=self.user)

    def delete_logged_model(self, model_id: str) -> None:
        self.logged.delete(model_id, actor=self.user)

    def put_logged_model_file(self, model_id: str, path: str, source: Path | bytes) -> None:
        rel = safe_relpath(path)
        logged = self.logged.get(model_id)
        if isinstance(source, bytes):
            digest, size = self.blobs.put_bytes(source), len(source)
        else:
            digest = self.blobs.put_file(Path(source))
            size = self.blobs.size(digest)
        self._tracking().put_artifact(logged.root, rel, str(digest), size)

    def logged_model_files(self, model_id: str, prefix: str = "") -> list[ModelFile]:
        logged = self.logged.get(model_id)
        return self._root_files(logged.root, safe_relpath(prefix, allow_empty=True))


def _same_files(a: list[ModelFile], b: list[ModelFile]) -> bool:
    return {(f.path, f.digest) for f in a} == {(f.path, f.digest) for f in b}


def _copy_verified(source: Path, target: Path, digest: Digest) -> None:
    """Copy a blob file to ``target`` atomically, verifying the blob's digest.

    The kernel copies (``copy_file_range`` through ``shutil.copyfile``) while blake3
    hashes the same blob memory-mapped on another thread (both release the GIL), so
    a verified copy costs about as much as a plain one. A mismatch leaves nothing at
    ``target``.
    """
    import contextlib
    import os
    import shutil
    import tempfile
    import threading

    from loopline.store.digest import Hasher

    try:
        size = source.stat().st_size
    except FileNotFoundError:
        raise NotFoundError(
            f"blob {digest} is missing", hint="run `loopline data verify`"
        ) from None
    hasher = Hasher()
    failure: list[BaseException] = []

    def hash_source() -> None:
        try:
            if size:
                hasher.update_mmap(str(source))
        except BaseException as exc:  # re-raised below
            failure.append(exc)

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    worker = threading.Thread(target=hash_source, daemon=True)
    worker.start()
    try:
        shutil.copyfile(source, tmp)
        worker.join()
        if failure:
            raise failure[0]
        if hasher.hexdigest() != digest.hex or os.path.getsize(tmp) != size:
            raise IntegrityError(f"blob {digest} is corrupt: its content does not match")
        os.replace(tmp, target)
    except BaseException:
        worker.join()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _files(rows: list[tuple[str, str, int]]) -> list[ModelFile]:
    return [ModelFile(p, d, s) for p, d, s in rows]

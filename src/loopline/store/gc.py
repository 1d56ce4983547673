"""Garbage collection: purge deleted runs, then delete blobs nothing references.

Every capability that keeps digests in the metadata store declares them through a
*reference provider*: a function called with the metadata
:class:`~loopline.store.metadata.Database` and the :class:`~loopline.store.blobs.BlobStore`
being collected, returning the set of digest strings (``blake3:<hex>``) it still
needs. A blob is deleted only when no provider names it, so a capability that
forgets to declare its references loses its blobs: each one adds its provider to
``_BUILTIN_PROVIDERS`` (a name table, loaded lazily, so the providers take part
whether or not their modules were imported) or calls
:func:`register_reference_provider`.

A provider returns *every* digest it needs, including those listed inside manifest
blobs (a dataset version's manifest names its files; that is why providers get the
blob store). A provider that cannot answer raises, and the collection stops before
deleting anything: an incomplete answer would delete blobs still in use.

Blobs younger than a grace period (one hour by default) are kept even when nothing
references them: an upload stores its blob first and commits the row naming it
after, and a collection running in between must not delete it. Where a store cannot
tell a blob's age, the blob counts as young unless the grace period is zero.

>>> import tempfile
>>> from loopline.store.blobs import open_blob_store
>>> from loopline.store.metadata import Database
>>> home = tempfile.mkdtemp()
>>> db, blobs = Database(f"sqlite:///{home}/m.db"), open_blob_store(home + "/blobs")
>>> _ = blobs.put_bytes(b"nobody needs me")
>>> collect(db, blobs, dry_run=False).blobs_young
1
>>> report = collect(db, blobs, dry_run=False, grace_ms=0)
>>> report.blobs_deleted, report.bytes_freed
(1, 15)
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, NotFoundError, StoreError

if TYPE_CHECKING:
    from loopline.store.blobs import BlobStore
    from loopline.store.digest import Digest
    from loopline.store.metadata import Database

__all__ = [
    "GRACE_MS",
    "BlobInfo",
    "GcReport",
    "ReferenceProvider",
    "collect",
    "reference_providers",
    "referenced_digests",
    "register_reference_provider",
    "unregister_reference_provider",
]

ReferenceProvider = Callable[["Database", "BlobStore | None"], set[str]]
"""``provider(db, blobs) -> digests``; ``blobs`` is None when no store is at hand."""

GRACE_MS = 3_600_000
"""Unreferenced blobs younger than this (by modification time) are kept."""

# name -> "module:function" of the providers every collection consults.
_BUILTIN_PROVIDERS: dict[str, str] = {
    "artifacts": "loopline.store.gc:artifact_references",
    "data": "loopline.data.gc:data_references",
    "registry": "loopline.registry.gc:registry_references",
}
_registered: dict[str, ReferenceProvider] = {}


def register_reference_provider(name: str, provider: ReferenceProvider) -> None:
    """Make every collection keep the digests ``provider`` returns.

    >>> register_reference_provider("doc", lambda db, blobs: {"blake3:" + "0" * 64})
    >>> "doc" in reference_providers()
    True
    >>> unregister_reference_provider("doc")
    """
    if name in _BUILTIN_PROVIDERS:
        raise InvalidArgumentError(f"reference provider {name!r} is built in")
    _registered[name] = provider


def unregister_reference_provider(name: str) -> None:
    _registered.pop(name, None)


def reference_providers() -> dict[str, ReferenceProvider]:
    """Every provider by name: the built-in ones, then the registered ones."""
    found: dict[str, ReferenceProvider] = {}
    for name, target in _BUILTIN_PROVIDERS.items():
        module, _, attr = target.partition(":")
        try:
            found[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise StoreError(
                f"cannot load the {name!r} reference provider ({target}): {exc}",
                hint="nothing was collected; reinstall loopline",
            ) from exc
    found.update(_registered)
    return found


def referenced_digests(db: Database, blobs: BlobStore | None = None) -> set[str]:
    """The union of what every provider references."""
    refs: set[str] = set()
    for provider in reference_providers().values():
        refs |= provider(db, blobs)
    return refs


def artifact_references(
    db: Database,
    blobs: BlobStore | None = None,
    *,
    exclude_roots: frozenset[str] = frozenset(),
) -> set[str]:
    """Digests of the artifact manifests (runs' artifacts and every other manifest root)."""
    import sqlalchemy as sa

    from loopline.store.metadata.schema import artifacts

    query = sa.select(artifacts.c.digest).distinct()
    if exclude_roots:
        # Small in practice (the runs a dry run would purge); NOT IN keeps it one query.
        query = query.where(artifacts.c.root.not_in(sorted(exclude_roots)))
    with db.read() as conn:
        return set(conn.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """One stored blob as the collector sees it; ``modified_at`` in epoch ms, or None."""

    digest: Digest
    size: int
    modified_at: int | None


@dataclass(slots=True)
class GcReport:
    """What a collection removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    runs_purged: list[str] = field(default_factory=list)
    blobs_scanned: int = 0
    blobs_referenced: int = 0
    blobs_young: int = 0
    """Unreferenced but inside the grace period, so kept."""
    blobs_deleted: int = 0
    bytes_freed: int = 0
    providers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(
    db: Database,
    blobs: BlobStore,
    *,
    dry_run: bool,
    older_than_ms: int | None = None,
    grace_ms: int = GRACE_MS,
    now_ms: int | None = None,
) -> GcReport:
    """Purge deleted runs, then delete the blobs no reference provider names.

    ``older_than_ms``: purge only runs deleted at least this many milliseconds ago
    (None: every deleted run). ``grace_ms``: keep unreferenced blobs modified less
    than this many milliseconds ago. ``dry_run`` changes nothing and reports what a
    real collection would remove.
    """
    if grace_ms < 0 or (older_than_ms is not None and older_than_ms < 0):
        raise InvalidArgumentError("durations must not be negative")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    cutoff = None if older_than_ms is None else now - older_than_ms
    providers = reference_providers()
    report = GcReport(dry_run=dry_run, providers=sorted(providers))
    refs: set[str] = set()
    if dry_run:
        report.runs_purged = _deleted_runs(db, cutoff)
        purged_roots = frozenset(f"runs/{run_id}" for run_id in report.runs_purged)
        for name, provider in providers.items():
            if name == "artifacts":
                refs |= artifact_references(db, blobs, exclude_roots=purged_roots)
            else:
                refs |= provider(db, blobs)
    else:
        from loopline.tracking.store import TrackingStore

        report.runs_purged = TrackingStore(db).purge_deleted_runs(cutoff)
        # References are read after the purge and before the listing of blobs, so a
        # blob stored after this point is either young or named by a newer row.
        for provider in providers.values():
            refs |= provider(db, blobs)
    young_after = now - grace_ms
    for blob in _iter_blobs(blobs):
        report.blobs_scanned += 1
        if str(blob.digest) in refs:
            report.blobs_referenced += 1
        elif grace_ms > 0 and (blob.modified_at is None or blob.modified_at > young_after):
            report.blobs_young += 1
        else:
            if not dry_run:
                blobs.delete(blob.digest)
            report.blobs_deleted += 1
            report.bytes_freed += blob.size
    return report


def _deleted_runs(db: Database, cutoff: int | None) -> list[str]:
    """The ids a purge with this cutoff would remove (what ``purge_deleted_runs`` selects)."""
    import sqlalchemy as sa

    from loopline.store.metadata.schema import runs

    clause = runs.c.lifecycle_stage == "deleted"
    if cutoff is not None:
        clause = sa.and_(clause, runs.c.deleted_at <= cutoff)
    with db.read() as conn:
        return list(conn.execute(sa.select(runs.c.id).where(clause).order_by(runs.c.id)).scalars())


def _iter_blobs(blobs: BlobStore) -> Iterator[BlobInfo]:
    """Every blob with its size and age.

    A store that lists objects with their metadata in one pass (S3's ListObjectsV2
    does) offers ``iter_objects()``; otherwise sizes come one by one and ages from the
    local file system where the store is local.
    """
    iter_objects = getattr(blobs, "iter_objects", None)
    if iter_objects is not None:
        yield from iter_objects()
        return
    object_path = getattr(blobs, "object_path", None)
    for digest in blobs.iter_digests():
        if object_path is not None:
            try:
                stat = object_path(digest).stat()
            except FileNotFoundError:
                continue  # deleted meanwhile
            yield BlobInfo(digest, stat.st_size, int(stat.st_mtime * 1000))
            continue
        try:
            size = blobs.size(digest)
        except NotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"could not read blob {digest}: {exc}") from exc
        yield BlobInfo(digest, size, None)

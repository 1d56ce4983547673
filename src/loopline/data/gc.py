"""Garbage collection for data versioning: what versions reference, and removing the rest.

:func:`data_references` is the data versioning *reference provider* of
:mod:`loopline.store.gc`: every digest a live dataset version needs (its manifest,
the files listed in it, its profile). It reads the manifests, so it needs the
blob store; it refuses to answer (raising) when a manifest cannot be read, since
an incomplete answer would let a collection delete the files of that version.

:func:`gc` sweeps the blob store with every registered provider's references plus
these (should the provider not be registered), keeping blobs younger
than the grace period (an ``add`` stores blobs before it records the version that
names them). It does not purge deleted runs (``loopline gc`` does), and it removes
the local copies (``LOOPLINE_HOME/data-cache``) of versions that no longer exist.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

from loopline.data.entities import GcResult
from loopline.data.manifest import Manifest
from loopline.data.packs import INDEX_PREFIX, PackIndex
from loopline.errors import InvalidArgumentError, LooplineError, StoreError
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from loopline.data.service import DataService
    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["GRACE_SECONDS", "data_references", "gc"]

GRACE_SECONDS = 3600.0


def data_references(db: Database, blobs: BlobStore | None = None) -> set[str]:
    """Every digest (``blake3:<hex>``) live dataset versions need; ``blobs`` defaults to the configured store."""
    from loopline.data.store import DataStore

    if blobs is None:
        from loopline.config import get_settings
        from loopline.store.blobs import open_blob_store

        blobs = open_blob_store(get_settings().blobs_uri)
    refs: set[str] = set()
    for row in DataStore(db).live_versions():
        if row.profile_digest:
            refs.add(row.profile_digest)
        if row.digest in refs:
            continue  # another version has this manifest: its files are in already
        refs.add(row.digest)
        try:
            manifest = Manifest.from_bytes(blobs.get_bytes(Digest.parse(row.digest), verify=True))
        except LooplineError as exc:
            raise StoreError(
                f"cannot read the manifest of {row.name}@{row.version} ({row.digest}): "
                f"{exc.message}; refusing to collect, so its files are not deleted",
                hint="run `loopline data verify`, and restore the manifest blob",
            ) from exc
        refs.update(f"blake3:{d}" for d in manifest.digests())
    for pack, members in PackIndex.load(blobs).members().items():
        if any(f"blake3:{d}" in refs for d in members):
            refs.add(f"blake3:{pack}")
    return refs


def gc(
    service: DataService, *, dry_run: bool = False, grace_seconds: float = GRACE_SECONDS
) -> GcResult:
    """Delete blobs nothing references (older than ``grace_seconds``), and stale local copies."""
    if grace_seconds < 0:
        raise InvalidArgumentError("the grace period must not be negative")
    server = service.server()
    if server is not None:
        from loopline.data.http import remote_gc

        return remote_gc(server, dry_run=dry_run, grace_seconds=grace_seconds)
    return _collect(service, dry_run=dry_run, grace_seconds=grace_seconds)


def _collect(service: DataService, *, dry_run: bool, grace_seconds: float) -> GcResult:
    from loopline.store.gc import reference_providers, referenced_digests

    refs = referenced_digests(service.db, service.blobs)
    if "data" not in reference_providers():  # registered in loopline.store.gc; never rely on it
        refs |= data_references(service.db, service.blobs)
    result = GcResult(dry_run=dry_run)
    young_after = time.time() - grace_seconds
    blobs = service.blobs
    object_path = getattr(blobs, "object_path", None)
    for digest in list(blobs.iter_digests()):
        result.blobs_scanned += 1
        if str(digest) in refs:
            result.blobs_referenced += 1
            continue
        if object_path is not None:
            try:
                info = os.stat(object_path(digest))
            except FileNotFoundError:
                continue
            size, modified = info.st_size, info.st_mtime
        else:
            size, modified = blobs.size(digest), None
        if grace_seconds > 0 and (modified is None or modified > young_after):
            result.blobs_young += 1
            continue
        if not dry_run:
            blobs.delete(digest)
        result.blobs_deleted += 1
        result.bytes_freed += size
    result.cache_dirs_removed = _sweep_cache(service, refs, dry_run)
    if not dry_run:
        for pack in PackIndex.load(blobs).packs:  # indexes of packs that are gone
            if not blobs.exists(Digest.parse(pack)):
                blobs.delete_file(INDEX_PREFIX + pack)
    return result


def _sweep_cache(service: DataService, refs: set[str], dry_run: bool) -> int:
    from loopline.data.checkout import CACHE_DIRNAME

    cache = service.settings.home / CACHE_DIRNAME
    if not cache.is_dir():
        return 0
    removed = 0
    for entry in os.scandir(cache):
        if entry.name.startswith(".") or f"blake3:{entry.name}" not in refs:
            if entry.name.startswith(".") and time.time() - entry.stat().st_mtime < 3600:
                continue  # a materialisation in progress
            removed += 1
            if not dry_run:
                shutil.rmtree(entry.path, ignore_errors=True)
    return removed

"""verify finds corrupt and missing blobs; gc removes only what nothing references."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import loopline.data as data
from loopline.data.gc import data_references
from loopline.errors import StoreError

if TYPE_CHECKING:
    from loopline.data.service import DataService


def _blob(service: DataService, hexdigest: str) -> Path:
    return Path(service.blobs.object_path(data.Entry("x", 0, hexdigest).blob))  # type: ignore[attr-defined]


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_healthy_store_verifies(tree: Path) -> None:
    data.add(tree, "tree")
    report = data.verify()
    assert report.ok
    assert report.blobs_checked == 5  # four files and the manifest
    assert data.verify("tree@1").ok


def test_corrupt_and_missing_blobs_are_reported_by_digest_and_place(
    tree: Path, service: DataService
) -> None:
    version = data.add(tree, "tree")
    by_path = {e.path: e for e in version.files}
    corrupt = _blob(service, by_path["a.txt"].digest)
    corrupt.chmod(0o644)
    corrupt.write_bytes(b"alpha?\n")  # same size, other content
    _blob(service, by_path["sub/b.txt"].digest).unlink()
    report = data.verify()
    assert not report.ok
    assert report.corrupt == [(f"blake3:{by_path['a.txt'].digest}", str(corrupt))]
    assert report.missing == [(f"blake3:{by_path['sub/b.txt'].digest}", "tree@1:sub/b.txt")]
    assert not data.verify("tree@1").ok


def test_gc_keeps_referenced_and_young_blobs_and_deletes_old_orphans(
    tree: Path, service: DataService
) -> None:
    data.add(tree, "tree")
    orphan = service.blobs.put_bytes(b"left behind by a killed add")
    young = service.blobs.put_bytes(b"an add in progress")
    _age(_blob(service, orphan.hex), 7200)
    dry = data.gc(dry_run=True)
    assert (dry.blobs_deleted, dry.blobs_young, dry.blobs_referenced) == (1, 1, 5)
    assert service.blobs.exists(orphan)
    done = data.gc()
    assert done.blobs_deleted == 1
    assert done.bytes_freed == len(b"left behind by a killed add")
    assert not service.blobs.exists(orphan)
    assert service.blobs.exists(young)
    assert data.verify().ok


def test_gc_respects_other_reference_providers(tree: Path, service: DataService) -> None:
    from loopline.store.gc import register_reference_provider, unregister_reference_provider

    kept = service.blobs.put_bytes(b"a model file")
    register_reference_provider("test-models", lambda db, blobs: {str(kept)})
    try:
        assert data.gc(grace_seconds=0).blobs_deleted == 0
    finally:
        unregister_reference_provider("test-models")
    assert data.gc(grace_seconds=0).blobs_deleted == 1


def test_references_cover_manifests_files_and_profiles(
    wine_csv: Path, service: DataService
) -> None:
    version = data.add(wine_csv, "wine")
    refs = data_references(service.db, service.blobs)
    assert str(version.digest) in refs
    assert str(version.profile_digest) in refs
    assert {f"blake3:{e.digest}" for e in version.files} <= refs


def test_an_unreadable_manifest_stops_collection(tree: Path, service: DataService) -> None:
    version = data.add(tree, "tree")
    entries = version.manifest.entries
    manifest = _blob(service, version.digest.hex)
    manifest.chmod(0o644)
    manifest.write_bytes(b"garbage")
    with pytest.raises(StoreError, match="refusing to collect"):
        data.gc(grace_seconds=0)
    assert all(service.blobs.exists(e.blob) for e in entries)


def test_gc_removes_cached_copies_of_versions_that_are_gone(
    tree: Path, service: DataService
) -> None:
    data.add(tree, "tree")
    cached = data.get("tree@1").path
    stale = cached.parent / ("f" * 64)
    stale.mkdir()
    result = data.gc()
    assert result.cache_dirs_removed == 1
    assert cached.exists()
    assert not stale.exists()

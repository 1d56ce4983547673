"""Garbage collection over a real metadata store (SQLite and PostgreSQL) and blob store."""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from loopline.errors import InvalidArgumentError, NotFoundError, StoreError
from loopline.store.blobs.local import LocalBlobStore
from loopline.store.digest import Digest
from loopline.store.gc import (
    GRACE_MS,
    BlobInfo,
    collect,
    reference_providers,
    referenced_digests,
    register_reference_provider,
    unregister_reference_provider,
)
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.service import TrackingService

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.store.metadata import Database

HOUR_AGO = time.time() - 2 * 3600


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def service(db: Database, blobs: LocalBlobStore) -> TrackingService:
    return TrackingService(db, blobs, user="tester")


def _age(blobs: LocalBlobStore, digest: Digest, when: float = HOUR_AGO) -> None:
    """Make a blob look as if it was written ``when`` (epoch seconds)."""
    os.utime(blobs.object_path(digest), (when, when))


def _run_with_artifact(service: TrackingService, exp_id: str, content: bytes) -> str:
    run_id = uuid.uuid4().hex
    service.write(
        RunWrites(
            batch_id=uuid.uuid4().hex,
            new_runs=[NewRun(run_id, exp_id, "r", int(time.time() * 1000), "tester")],
        )
    )
    service.put_artifact(run_id, "model/weights.bin", content)
    return run_id


def _digest(content: bytes) -> Digest:
    return Digest.of_bytes(content)


def test_deletes_only_old_unreferenced_blobs(
    service: TrackingService, blobs: LocalBlobStore, db: Database
) -> None:
    exp = service.create_experiment("gc")
    _run_with_artifact(service, exp, b"kept: referenced")
    old_orphan = blobs.put_bytes(b"old orphan!")
    young_orphan = blobs.put_bytes(b"young orphan")
    for digest in (old_orphan, _digest(b"kept: referenced")):
        _age(blobs, digest)

    report = collect(db, blobs, dry_run=False)

    assert (report.blobs_scanned, report.blobs_referenced) == (3, 1)
    assert (report.blobs_deleted, report.bytes_freed, report.blobs_young) == (1, 11, 1)
    assert not blobs.exists(old_orphan)
    assert blobs.exists(young_orphan)
    assert blobs.exists(_digest(b"kept: referenced"))
    assert report.providers == ["artifacts", "data", "registry"]


def test_purges_deleted_runs_then_their_blobs(
    service: TrackingService, blobs: LocalBlobStore, db: Database
) -> None:
    exp = service.create_experiment("gc")
    live = _run_with_artifact(service, exp, b"shared")
    gone = _run_with_artifact(service, exp, b"only the deleted run has this")
    service.put_artifact(gone, "shared.bin", b"shared")  # deduplicated with the live run
    service.delete_run(gone)

    report = collect(db, blobs, dry_run=False, grace_ms=0)

    assert report.runs_purged == [gone]
    assert report.blobs_deleted == 1
    assert not blobs.exists(_digest(b"only the deleted run has this"))
    assert blobs.exists(_digest(b"shared"))
    assert service.get_run(live).info.lifecycle_stage == "active"
    with pytest.raises(NotFoundError, match="does not exist"):
        service.get_run(gone)


def test_dry_run_reports_what_a_collection_removes_and_changes_nothing(
    service: TrackingService, blobs: LocalBlobStore, db: Database
) -> None:
    exp = service.create_experiment("gc")
    _run_with_artifact(service, exp, b"live")
    gone = _run_with_artifact(service, exp, b"deleted run's")
    service.delete_run(gone)
    before = sorted(blobs.iter_digests())

    dry = collect(db, blobs, dry_run=True, grace_ms=0)

    assert dry.dry_run
    assert dry.runs_purged == [gone]
    assert (dry.blobs_deleted, dry.bytes_freed) == (1, len(b"deleted run's"))
    assert sorted(blobs.iter_digests()) == before
    assert service.get_run(gone).info.lifecycle_stage == "deleted"

    real = collect(db, blobs, dry_run=False, grace_ms=0)
    assert (real.runs_purged, real.blobs_deleted, real.bytes_freed) == (
        dry.runs_purged,
        dry.blobs_deleted,
        dry.bytes_freed,
    )


def test_older_than_keeps_recently_deleted_runs(
    service: TrackingService, blobs: LocalBlobStore, db: Database
) -> None:
    exp = service.create_experiment("gc")
    run_id = _run_with_artifact(service, exp, b"recently deleted")
    service.delete_run(run_id)

    recent = collect(db, blobs, dry_run=False, older_than_ms=3_600_000, grace_ms=0)
    assert recent.runs_purged == []
    assert recent.blobs_deleted == 0
    assert service.get_run(run_id).info.lifecycle_stage == "deleted"

    later = int(time.time() * 1000) + 2 * 3_600_000
    report = collect(db, blobs, dry_run=False, older_than_ms=3_600_000, grace_ms=0, now_ms=later)
    assert report.runs_purged == [run_id]
    assert report.blobs_deleted == 1


@pytest.fixture
def extra_provider() -> Iterator[set[str]]:
    """A registered provider whose references the test fills in."""
    refs: set[str] = set()
    register_reference_provider("test-extra", lambda db, blobs: set(refs))
    try:
        yield refs
    finally:
        unregister_reference_provider("test-extra")
    assert "test-extra" not in reference_providers()


def test_registered_providers_keep_their_blobs(
    extra_provider: set[str], blobs: LocalBlobStore, db: Database
) -> None:
    wanted = blobs.put_bytes(b"a dataset file")
    unwanted = blobs.put_bytes(b"nobody's")
    extra_provider.add(str(wanted))

    assert str(wanted) in referenced_digests(db)
    report = collect(db, blobs, dry_run=False, grace_ms=0)

    assert blobs.exists(wanted)
    assert not blobs.exists(unwanted)
    assert report.providers == ["artifacts", "data", "registry", "test-extra"]


def test_builtin_providers_cannot_be_replaced() -> None:
    with pytest.raises(InvalidArgumentError, match="built in"):
        register_reference_provider("artifacts", lambda db, blobs: set())


class _AgelessStore(LocalBlobStore):
    """A store that lists its blobs but cannot tell their age (as some remotes)."""

    def iter_objects(self) -> Iterator[BlobInfo]:
        for digest in self.iter_digests():
            yield BlobInfo(digest, self.size(digest), None)


def test_blobs_of_unknown_age_are_kept_unless_the_grace_period_is_zero(
    tmp_path: Path, db: Database
) -> None:
    store = _AgelessStore(tmp_path / "ageless")
    orphan = store.put_bytes(b"orphan of unknown age")

    kept = collect(db, store, dry_run=False)
    assert (kept.blobs_young, kept.blobs_deleted) == (1, 0)
    assert store.exists(orphan)

    gone = collect(db, store, dry_run=False, grace_ms=0)
    assert gone.blobs_deleted == 1
    assert not store.exists(orphan)


def test_grace_period_is_measured_from_the_blob_modification_time(
    blobs: LocalBlobStore, db: Database
) -> None:
    digest = blobs.put_bytes(b"borderline")
    now = time.time()
    _age(blobs, digest, now - GRACE_MS / 1000 + 60)  # a minute inside the grace period
    assert collect(db, blobs, dry_run=True).blobs_young == 1
    _age(blobs, digest, now - GRACE_MS / 1000 - 60)  # a minute past it
    assert collect(db, blobs, dry_run=True).blobs_deleted == 1


def test_negative_durations_are_refused(blobs: LocalBlobStore, db: Database) -> None:
    with pytest.raises(InvalidArgumentError, match="negative"):
        collect(db, blobs, dry_run=True, grace_ms=-1)


def test_a_provider_that_fails_stops_the_collection_before_any_deletion(
    blobs: LocalBlobStore, db: Database
) -> None:
    orphan = blobs.put_bytes(b"would be deleted")

    def broken(db: Database, blobs: object) -> set[str]:
        raise StoreError("cannot read a manifest")

    register_reference_provider("broken", broken)
    try:
        with pytest.raises(StoreError, match="cannot read a manifest"):
            collect(db, blobs, dry_run=False, grace_ms=0)
    finally:
        unregister_reference_provider("broken")
    assert blobs.exists(orphan)

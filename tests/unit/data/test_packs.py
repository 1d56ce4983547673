"""Packs: many small files stored as a few blobs, read back verified, collected as a whole."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import loopline.data as data
from loopline.data.packs import INDEX_PREFIX, PACK_MIN_FILES, PackIndex
from loopline.errors import IntegrityError

if TYPE_CHECKING:
    from loopline.data.service import DataService


@pytest.fixture
def many(tmp_path: Path) -> Path:
    root = tmp_path / "many"
    for i in range(3 * PACK_MIN_FILES):
        folder = root / f"part-{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.txt").write_bytes(f"record {i}\n".encode() * (1 + i % 50))
    (root / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # too big to pack
    return root


def _objects(service: DataService) -> list[Path]:
    return [p for p in (Path(service.blobs.uri) / "objects").rglob("*") if p.is_file()]


def test_many_small_files_become_a_few_packs(
    many: Path, service: DataService, tmp_path: Path
) -> None:
    version = data.add(many, "many")
    index = PackIndex.load(service.blobs)
    assert 1 <= len(index.packs) <= 8  # at most one per worker thread
    assert len(_objects(service)) == len(index.packs) + 2  # packs, the big file, the manifest
    small = [e for e in version.files if e.path != "big.bin"]
    assert all(e.digest in index for e in small)
    result = data.checkout("many@1", tmp_path / "out")
    assert result.files == 3 * PACK_MIN_FILES + 1
    for entry in version.files:
        assert (tmp_path / "out" / entry.path).read_bytes() == (many / entry.path).read_bytes()
    assert data.verify().ok
    assert data.get("many").path.is_dir()


def test_packed_content_is_deduplicated_across_datasets(many: Path, service: DataService) -> None:
    data.add(many, "one")
    before = sorted(_objects(service))
    data.add(many, "two")  # same files under another name: only a manifest is new
    after = sorted(_objects(service))
    assert len(after) == len(before)  # same manifest content: the very same blob
    assert data.get("two").digest == data.get("one").digest


def test_a_few_changed_files_are_stored_one_blob_each(many: Path, service: DataService) -> None:
    data.add(many, "many")
    packs = PackIndex.load(service.blobs).packs
    (many / "part-0" / "f0000.txt").write_text("changed")
    (many / "part-1" / "f0001.txt").write_text("changed too")
    data.add(many, "many")
    assert PackIndex.load(service.blobs).packs == packs
    assert data.verify().ok
    assert [c.path for c in data.diff("many@1", "many@2").modified] == [
        "part-0/f0000.txt",
        "part-1/f0001.txt",
    ]


def test_a_corrupt_pack_is_reported(many: Path, service: DataService, tmp_path: Path) -> None:
    data.add(many, "many")
    pack = next(iter(PackIndex.load(service.blobs).packs))
    path = Path(service.blobs.object_path(data.Entry("x", 0, pack).blob))  # type: ignore[attr-defined]
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=f"in pack blake3:{pack}"):
        data.checkout("many@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = data.verify()
    assert [c[0] for c in report.corrupt] == [f"blake3:{pack}"]


def test_gc_keeps_live_packs_and_drops_orphans_with_their_index(
    many: Path, service: DataService
) -> None:
    data.add(many, "many")
    live = PackIndex.load(service.blobs).packs
    from loopline.data.packs import PackWriter

    writer = PackWriter(service.blobs)
    for i in range(3):
        writer.add(f"{i:064x}", b"orphaned %d" % i)
    orphan = writer.flush()
    assert orphan is not None
    path = Path(service.blobs.object_path(data.Entry("x", 0, orphan).blob))  # type: ignore[attr-defined]
    past = time.time() - 7200
    os.utime(path, (past, past))
    result = data.gc()
    assert result.blobs_deleted == 1
    assert PackIndex.load(service.blobs).packs == live
    assert service.blobs.list_files(INDEX_PREFIX + orphan) == []
    assert data.verify().ok


def test_a_missing_pack_is_reported_missing(many: Path, service: DataService) -> None:
    version = data.add(many, "many")
    for pack in PackIndex.load(service.blobs).packs:
        service.blobs.delete(data.Entry("x", 0, pack).blob)
    report = data.verify()
    assert len(report.missing) == version.file_count - 1
    assert all(who.startswith("many@1:part-") for _, who in report.missing)

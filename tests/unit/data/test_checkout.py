"""checkout and materialised copies: verified, atomic, never sharing writes with the store."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import loopline.data as data
from loopline.errors import IntegrityError, InvalidStateError

if TYPE_CHECKING:
    from loopline.data.service import DataService


def _tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _corrupt(service: DataService, digest_hex: str, content: bytes = b"rotten bits") -> Path:
    blob = Path(service.blobs.object_path(data.Entry("x", 0, digest_hex).blob))  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(content)
    return blob


def test_checkout_writes_an_exact_writable_copy(tree: Path, tmp_path: Path) -> None:
    version = data.add(tree, "tree")
    result = data.checkout("tree@1", tmp_path / "out")
    out = tmp_path / "out"
    assert _tree_files(out) == _tree_files(tree)
    assert (result.files, result.written, result.bytes) == (4, 4, version.total_size)
    assert os.access(out / "run.sh", os.X_OK)
    assert stat.S_IMODE((out / "a.txt").stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".loopline-partial-*"))


def test_editing_a_checked_out_file_leaves_the_store_alone(
    tree: Path, tmp_path: Path, service: DataService
) -> None:
    data.add(tree, "tree")
    data.checkout("tree@1", tmp_path / "out")
    with open(tmp_path / "out" / "a.txt", "r+b") as fh:  # in place, like an editor that rewrites
        fh.write(b"EDITED")
    assert data.verify().ok
    assert data.get("tree@1").files[0].digest == data.add(tree, "tree").files[0].digest


def test_large_files_check_out_through_the_kernel(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    data.add(big, "big")
    result = data.checkout("big", tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == big.read_bytes()
    assert set(result.methods) <= {"copy", "reflink"}


def test_a_file_version_goes_to_a_path_or_into_a_folder(tree: Path, tmp_path: Path) -> None:
    data.add(tree / "a.txt", "single")
    data.checkout("single", tmp_path / "named.txt")
    assert (tmp_path / "named.txt").read_text() == "alpha\n"
    folder = tmp_path / "folder"
    folder.mkdir()
    data.checkout("single", folder)
    assert (folder / "a.txt").read_text() == "alpha\n"
    with pytest.raises(InvalidStateError, match="exists"):
        data.checkout("single", tmp_path / "named.txt")
    data.checkout("single", tmp_path / "named.txt", force=True)


def test_a_non_empty_folder_needs_force(tree: Path, tmp_path: Path) -> None:
    data.add(tree, "tree")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep?")
    with pytest.raises(InvalidStateError, match="not empty"):
        data.checkout("tree@1", out)
    assert _tree_files(out) == {"mine.txt": b"keep?"}


def test_force_makes_a_folder_match_keeping_what_matches(tree: Path, tmp_path: Path) -> None:
    data.add(tree, "tree")
    (tree / "a.txt").write_text("second\n")
    (tree / "sub" / "b.txt").unlink()
    data.add(tree, "tree")
    out = tmp_path / "out"
    data.checkout("tree@2", out)
    (out / "extra" / "deep").mkdir(parents=True)
    (out / "extra" / "deep" / "x.txt").write_text("extra")
    result = data.checkout("tree@1", out, force=True)
    assert (result.written, result.removed) == (2, 1)  # a.txt and b.txt; extra/deep/x.txt
    assert not (out / "extra").exists()
    back = tmp_path / "back"
    data.checkout("tree@1", back)
    assert _tree_files(out) == _tree_files(back)


def test_link_mode_makes_read_only_hardlinks(
    tree: Path, tmp_path: Path, service: DataService
) -> None:
    version = data.add(tree, "tree")
    result = data.checkout("tree@1", tmp_path / "linked", link=True)
    assert result.methods == {"hardlink": 3, "copy": 1}  # the executable script is copied
    entry = next(e for e in version.files if e.path == "a.txt")
    linked = (tmp_path / "linked" / "a.txt").stat()
    blob = Path(service.blobs.object_path(entry.blob)).stat()  # type: ignore[attr-defined]
    assert linked.st_ino == blob.st_ino
    assert stat.S_IMODE(linked.st_mode) == 0o444


def test_a_corrupt_blob_is_reported_and_never_materialised(
    tree: Path, tmp_path: Path, service: DataService
) -> None:
    version = data.add(tree, "tree")
    entry = next(e for e in version.files if e.path == "sub/b.txt")
    blob = _corrupt(service, entry.digest)
    with pytest.raises(IntegrityError, match=rf"{entry.digest}.*{blob}.*corrupt"):
        data.checkout("tree@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".loopline-partial-*"))
    with pytest.raises(IntegrityError, match="corrupt"):
        data.checkout("tree@1", tmp_path / "linked", link=True)


def test_a_corrupt_large_blob_is_reported(tmp_path: Path, service: DataService) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    version = data.add(big, "big")
    _corrupt(service, version.files[0].digest, os.urandom(2 * 1024 * 1024))
    with pytest.raises(IntegrityError, match="corrupt"):
        data.checkout("big", tmp_path / "copy.bin")
    assert not (tmp_path / "copy.bin").exists()


def test_path_is_a_cached_read_only_copy(tree: Path, service: DataService) -> None:
    data.add(tree, "tree")
    version = data.get("tree@1")
    path = version.path
    assert path.parent == service.settings.home / "data-cache"
    assert _tree_files(path) == _tree_files(tree)
    assert stat.S_IMODE((path / "a.txt").stat().st_mode) == 0o444
    assert stat.S_IMODE((path / "run.sh").stat().st_mode) == 0o555
    assert data.get("tree@latest").path == path  # materialised once
    single = data.add(tree / "a.txt", "single")
    assert data.get("single").file.read_text() == "alpha\n"
    with pytest.raises(Exception, match="not a single file"):
        _ = version.file
    assert single.file.name == "a.txt"

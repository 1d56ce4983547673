"""Listing trees, and refusing bad input by name."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from loopline.data.scan import scan
from loopline.errors import InvalidArgumentError, NotFoundError, UnsafePathError

if TYPE_CHECKING:
    from pathlib import Path


def test_a_tree_lists_files_sorted_with_stat_fields(tree: Path) -> None:
    snap = scan(tree)
    assert snap.kind == "dir"
    assert snap.root == os.path.realpath(tree)
    assert [f.relpath for f in snap.files] == ["a.txt", "run.sh", "sub/b.txt", "sub/deeper/c.bin"]
    by_path = {f.relpath: f for f in snap.files}
    assert by_path["run.sh"].executable
    assert not by_path["a.txt"].executable
    info = os.stat(tree / "sub" / "b.txt")
    assert by_path["sub/b.txt"][2:5] == (info.st_size, info.st_ino, info.st_mtime_ns)
    assert snap.total_size == sum(f.size for f in snap.files)


def test_a_file_is_a_snapshot_of_one(tree: Path) -> None:
    snap = scan(tree / "sub" / "b.txt")
    assert snap.kind == "file"
    assert [f.relpath for f in snap.files] == ["b.txt"]


def test_many_nested_subfolders_are_all_walked_in_order(tmp_path: Path) -> None:
    for i in range(30):
        folder = tmp_path / f"d{i:02d}" / "inner"
        folder.mkdir(parents=True)
        for j in range(5):
            (folder / f"f{j}").write_text(f"{i}-{j}")
    snap = scan(tmp_path)
    assert len(snap.files) == 150
    assert [f.relpath for f in snap.files] == sorted(f.relpath for f in snap.files)


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=f"{tmp_path}/nope does not exist"):
        scan(tmp_path / "nope")


def test_links_inside_the_tree_are_followed(tree: Path) -> None:
    (tree / "link.txt").symlink_to(tree / "a.txt")
    (tree / "sublink").symlink_to(tree / "sub" / "deeper")
    paths = {f.relpath: f for f in scan(tree).files}
    assert paths["link.txt"].abspath == os.path.realpath(tree / "a.txt")
    assert "sublink/c.bin" in paths


def test_dangling_link_is_refused_by_name(tree: Path) -> None:
    (tree / "sub" / "gone").symlink_to(tree / "missing.txt")
    with pytest.raises(InvalidArgumentError, match=r"sub/gone is a dangling symbolic link"):
        scan(tree)


def test_escaping_link_is_refused_by_name(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (tree / "sub" / "leak").symlink_to(outside)
    with pytest.raises(
        UnsafePathError, match=r"sub/leak is a symbolic link to .*secret.txt, outside"
    ):
        scan(tree)


def test_link_loop_is_refused(tree: Path) -> None:
    (tree / "sub" / "loop").symlink_to(tree / "sub")
    with pytest.raises(InvalidArgumentError, match="symbolic link loop"):
        scan(tree)


def test_a_root_that_is_a_dangling_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ds").symlink_to(tmp_path / "nothing")
    with pytest.raises(InvalidArgumentError, match="which does not exist"):
        scan(tmp_path / "ds")


def test_special_files_are_refused_by_name(tree: Path) -> None:
    os.mkfifo(tree / "sub" / "pipe")
    with pytest.raises(InvalidArgumentError, match=r"sub/pipe is neither a regular file"):
        scan(tree)
    with pytest.raises(InvalidArgumentError, match="neither a regular file"):
        scan(tree / "sub" / "pipe")


def test_excluded_folder_is_left_out(tree: Path) -> None:
    snap = scan(tree, exclude=tree / "sub")
    assert [f.relpath for f in snap.files] == ["a.txt", "run.sh"]

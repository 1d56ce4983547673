"""status (working copy vs a version) and diff (version vs version), tabular changes included."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import loopline.data as data
from loopline.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from pathlib import Path


def test_status_of_an_untouched_tree_is_clean(tree: Path) -> None:
    data.add(tree, "tree")
    result = data.status("tree")
    assert result.clean
    assert result.ref == "tree@1"
    assert result.unchanged == 4
    assert data.status("tree", tree).clean


def test_status_lists_every_kind_of_change(tree: Path) -> None:
    data.add(tree, "tree")
    (tree / "a.txt").write_text("alpha, longer\n")
    (tree / "sub" / "b.txt").unlink()
    (tree / "new.csv").write_text("x\n1\n")
    result = data.status("tree")
    assert not result.clean
    assert [(c.path, c.change, c.old_size, c.new_size) for c in result.changes] == [
        ("a.txt", "modified", 6, 14),
        ("new.csv", "added", None, 4),
        ("sub/b.txt", "removed", 6, None),
    ]
    assert result.unchanged == 2


def test_status_of_another_folder_and_of_a_new_dataset(tree: Path, tmp_path: Path) -> None:
    data.add(tree, "tree")
    other = tmp_path / "other"
    data.checkout("tree@1", other)
    assert data.status("tree", other).clean
    with pytest.raises(NotFoundError, match="has no versions"):
        data.status("nothing-yet")
    fresh = data.status("nothing-yet", tree)
    assert fresh.ref is None
    assert {c.change for c in fresh.changes} == {"added"}


def test_status_against_an_older_version(tree: Path) -> None:
    from loopline.data.api import get_service
    from loopline.data.status import status

    data.add(tree, "tree")
    (tree / "a.txt").write_text("v2\n")
    data.add(tree, "tree")
    assert status(get_service(), "tree").clean
    old = status(get_service(), "tree", ref="1")
    assert [c.path for c in old.changes] == ["a.txt"]


def test_diff_of_files(tree: Path) -> None:
    data.add(tree, "tree")
    (tree / "a.txt").write_text("changed\n")
    (tree / "z.txt").write_text("z")
    (tree / "sub" / "deeper" / "c.bin").unlink()
    data.add(tree, "tree")
    result = data.diff("tree@1", "tree@2")
    assert (result.a, result.b) == ("tree@1", "tree@2")
    assert [c.path for c in result.added] == ["z.txt"]
    assert [c.path for c in result.removed] == ["sub/deeper/c.bin"]
    assert [(c.path, c.old_size, c.new_size) for c in result.modified] == [("a.txt", 6, 8)]
    assert result.unchanged == 2
    assert data.diff("tree@2", "tree@2").changes == []


def test_diff_of_tables_from_real_data(tmp_path: Path, wine_frame: object) -> None:
    folder = tmp_path / "wine"
    folder.mkdir()
    frame = wine_frame
    frame.to_csv(folder / "wine.csv", index=False)  # type: ignore[attr-defined]
    frame.to_parquet(folder / "wine.parquet")  # type: ignore[attr-defined]
    data.add(folder, "wine")
    smaller = frame.iloc[:100].drop(columns=["magnesium"])  # type: ignore[attr-defined]
    smaller = smaller.assign(proline="p" + smaller["proline"].astype(int).astype(str), extra=1)
    smaller.to_csv(folder / "wine.csv", index=False)
    data.add(folder, "wine")
    result = data.diff("wine@1", "wine@2")
    assert [c.path for c in result.modified] == ["wine.csv"]
    (table,) = result.tables
    assert (table.path, table.old_rows, table.new_rows) == ("wine.csv", 178, 100)
    assert table.added_columns == ["extra"]
    assert table.removed_columns == ["magnesium"]
    assert table.retyped_columns == [("proline", "double", "string")]


def test_diff_refuses_bad_refs(tree: Path) -> None:
    data.add(tree, "tree")
    with pytest.raises(NotFoundError):
        data.diff("tree@1", "tree@9")
    with pytest.raises(InvalidArgumentError):
        data.diff("tree@1", "tree@@")

"""add: new versions only when content changes, blobs deduplicated and read-only, bad input refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import blake3
import pytest

import loopline.data as data
from loopline.errors import InvalidArgumentError, NotFoundError, UnsafePathError

if TYPE_CHECKING:
    from loopline.data.service import DataService


def _versions(service: DataService, name: str) -> list[int]:
    try:
        return [r.version for r in service.store.versions("default", name)]
    except NotFoundError:
        return []


def test_first_add_records_version_one(tree: Path, service: DataService) -> None:
    version = data.add(tree, "tree", message="first")
    assert (version.ref, version.kind, version.file_count) == ("tree@1", "dir", 4)
    assert version.total_size == sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    assert version.message == "first"
    assert version.source == os.path.realpath(tree)
    assert version.created_by == service.settings.user
    assert not version.unchanged
    files = {e.path: e for e in version.files}
    assert files["run.sh"].executable
    expected = blake3.blake3((tree / "a.txt").read_bytes()).hexdigest()
    assert files["a.txt"].digest == expected


def test_unchanged_content_is_not_a_new_version(tree: Path, service: DataService) -> None:
    first = data.add(tree, "tree")
    again = data.add(tree, "tree")
    assert again.unchanged
    assert again.version == first.version == 1
    assert _versions(service, "tree") == [1]


def test_every_change_is_a_new_version(tree: Path, service: DataService) -> None:
    data.add(tree, "tree")
    (tree / "a.txt").write_text("changed\n")
    assert data.add(tree, "tree").version == 2
    (tree / "sub" / "new.txt").write_text("new\n")
    assert data.add(tree, "tree").version == 3
    (tree / "run.sh").chmod(0o644)  # only the executable bit
    assert data.add(tree, "tree").version == 4
    (tree / "sub" / "new.txt").unlink()
    assert data.add(tree, "tree").version == 5
    assert _versions(service, "tree") == [1, 2, 3, 4, 5]


def test_stored_blobs_are_deduplicated_and_read_only(tree: Path, service: DataService) -> None:
    data.add(tree, "one")
    data.add(tree / "sub", "two")  # b.txt and c.bin again
    objects = Path(service.blobs.uri) / "objects"
    blobs = [p for p in objects.rglob("*") if p.is_file()]
    assert len(blobs) == 4 + 2  # four files, two manifests
    for blob in blobs:
        assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert list((Path(service.blobs.uri) / "tmp").iterdir()) == []


def test_large_files_are_copied_and_hashed_exactly(tmp_path: Path, service: DataService) -> None:
    big = tmp_path / "big.bin"
    content = os.urandom(3 * 1024 * 1024 + 17)  # above the in-memory threshold, odd size
    big.write_bytes(content)
    version = data.add(big, "big")
    entry = version.files[0]
    assert entry.digest == blake3.blake3(content).hexdigest()
    assert service.blobs.get_bytes(entry.blob) == content


def test_tags_at_add_time_and_on_unchanged_content(tree: Path) -> None:
    data.add(tree, "tree", tags=["raw"])
    assert data.get("tree@raw").version == 1
    again = data.add(tree, "tree", tags=["reviewed"])
    assert again.unchanged
    assert sorted(again.tags) == ["raw", "reviewed"]
    assert data.add(tree, "tree", tags="single").tags == ["raw", "reviewed", "single"]


@pytest.mark.parametrize("name", ["has space", "123", "", "a/b", "x" * 257])
def test_invalid_names_record_nothing(tree: Path, service: DataService, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        data.add(tree, name)
    assert service.store.datasets("default") == []


def test_bad_trees_record_nothing(tree: Path, tmp_path: Path, service: DataService) -> None:
    (tree / "escape").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError, match="escape"):
        data.add(tree, "tree")
    (tree / "escape").unlink()
    (tree / "dangling").symlink_to(tree / "gone")
    with pytest.raises(InvalidArgumentError, match="dangling"):
        data.add(tree, "tree")
    with pytest.raises(NotFoundError, match="does not exist"):
        data.add(tmp_path / "missing", "tree")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="contains no files"):
        data.add(empty, "tree")
    assert service.store.datasets("default") == []
    objects = Path(service.blobs.uri) / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))


def test_an_unreadable_file_is_named_and_nothing_recorded(
    tree: Path, service: DataService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads any file whatever its mode, so unreadability is simulated where files open.
    real_open = os.open

    def refusing(path: str, flags: int, *args: int, **kwargs: int) -> int:
        if str(path).endswith("b.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(InvalidArgumentError, match=r"cannot read .*sub/b.txt: Permission denied"):
        data.add(tree, "tree")
    monkeypatch.undo()
    assert service.store.datasets("default") == []


def test_a_file_changing_while_read_is_refused(
    tmp_path: Path, service: DataService, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "growing.bin"
    target.write_bytes(b"x" * 100)
    from loopline.data import ingest

    real = ingest.read_exact

    def grow_first(path: str, size: int) -> bytes:
        with open(path, "ab") as fh:
            fh.write(b"more")
        return real(path, size)

    monkeypatch.setattr(ingest, "read_exact", grow_first)
    with pytest.raises(InvalidArgumentError, match="changed while it was being read"):
        data.add(target, "growing")
    assert service.store.datasets("default") == []


def test_the_home_folder_is_never_added_to_itself(tmp_path: Path, service: DataService) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "x.txt").write_text("x")
    service.settings.home.mkdir(parents=True, exist_ok=True)
    assert service.settings.home.parent == tmp_path
    version = data.add(tmp_path, "everything")
    assert all(not e.path.startswith("loopline-home/") for e in version.files)


def test_re_add_and_status_never_import_sqlalchemy(tree: Path, tmp_path: Path) -> None:
    data.add(tree, "tree")
    code = (
        "import sys; import loopline.data as d; from loopline.data import api; "
        f"v = d.add({str(tree)!r}, 'tree'); s = d.status('tree'); "
        "assert v.unchanged and s.clean, (v, s); "
        "print('sqlalchemy' in sys.modules, 'pandas' in sys.modules, 'pyarrow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.split() == ["False", "False", "False"]


def test_changed_re_add_does_not_import_sqlalchemy_either(tree: Path) -> None:
    data.add(tree, "tree")
    (tree / "a.txt").write_text("changed")
    code = (
        "import sys; import loopline.data as d; "
        f"v = d.add({str(tree)!r}, 'tree'); assert v.version == 2, v; "
        "print('sqlalchemy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "False"


def test_file_and_folder_of_the_same_content_differ(tree: Path) -> None:
    only = tree.parent / "only"
    only.mkdir()
    (only / "a.txt").write_text("alpha\n")
    as_dir = data.add(only, "as-dir")
    as_file = data.add(only / "a.txt", "as-file")
    assert (as_dir.kind, as_file.kind) == ("dir", "file")
    assert as_dir.digest != as_file.digest
    assert as_dir.files == as_file.files


def _age(root: Path) -> None:
    """Files written a while ago: the state cache does not trust files written just now."""
    for path in root.rglob("*"):
        os.utime(path, (path.stat().st_mtime - 10, path.stat().st_mtime - 10))


def test_a_changed_add_trusts_the_cache_only_for_the_latest_versions_listing(
    tree: Path, service: DataService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous manifest is read only when the cache's listing is not the latest version."""
    from loopline.data.service import DataService

    _age(tree)
    data.add(tree, "trusted")
    reads: list[str] = []
    original = DataService.manifest_digests

    def counting(self: DataService, digest: object) -> set[str]:
        reads.append(str(digest))
        return original(self, digest)  # type: ignore[arg-type]

    monkeypatch.setattr(DataService, "manifest_digests", counting)
    (tree / "a.txt").write_text("changed once\n")
    _age(tree)
    assert data.add(tree, "trusted").version == 2
    assert reads == []  # the cache's listing was version 1's: its blobs are stored
    other = tree.parent / "elsewhere"
    other.mkdir()
    (other / "x.txt").write_text("x\n")
    data.add(other, "trusted")  # version 3 comes from another folder
    reads.clear()
    (tree / "a.txt").write_text("changed twice\n")
    _age(tree)
    assert data.add(tree, "trusted").version == 4
    assert len(reads) == 1  # the cache's listing (version 2) is not the latest: look
    assert data.verify().ok

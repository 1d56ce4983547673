"""The data SDK end to end on each metadata backend: SQLite (fast path) and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import loopline.data as data
from loopline.config import get_settings, reset_settings
from loopline.data import api

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def on_backend(metadata_url: str) -> Iterator[str]:
    reset_settings(get_settings().with_(tracking_uri=metadata_url))
    api.close()
    yield metadata_url
    api.close()


def test_versions_tags_diff_lineage_and_gc(on_backend: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tree / "sub" / "b.txt").write_text("bravo")
    first = data.add(tree, "backend", tags=["raw"])
    assert first.ref == "backend@1"
    assert data.add(tree, "backend").unchanged
    (tree / "sub" / "b.txt").write_text("bravo two")
    second = data.add(tree, "backend", message="second")
    assert second.version == 2
    assert data.get("backend@raw").version == 1
    assert data.get(f"backend@sha:{second.digest.hex[:10]}").version == 2
    assert data.status("backend").clean
    changes = data.diff("backend@1", "backend@2").changes
    assert [(c.path, c.change) for c in changes] == [("sub/b.txt", "modified")]
    data.tag("backend@2", "raw")
    assert data.get("backend@raw").version == 2
    data.log_input("backend@2", run_id="run-on-backend", context="training")
    assert data.lineage(run_id="run-on-backend").datasets == [("backend@2", "training")]
    assert data.gc(dry_run=True, grace_seconds=0).blobs_deleted == 0
    assert data.verify().ok
    assert data.get("backend@1").to_pandas()["y"].tolist() == [2, 4]

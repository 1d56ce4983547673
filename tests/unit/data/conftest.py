"""Fixtures of the data versioning tests: a service on the test's own LOOPLINE_HOME, real data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loopline.config import get_settings
from loopline.data import api

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.data.service import DataService


@pytest.fixture
def service() -> Iterator[DataService]:
    """A data service on the test's LOOPLINE_HOME (the SDK's process-wide one)."""
    svc = api.get_service()
    yield svc
    api.close()


@pytest.fixture
def settings_home() -> Path:
    return get_settings().home


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small folder: text files in subfolders, an executable script, a binary file."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("bravo\n")
    (root / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)) * 8)
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def wine_frame() -> object:
    """scikit-learn's bundled wine data set (178 rows, 13 features + target)."""
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


@pytest.fixture
def wine_csv(tmp_path: Path, wine_frame: object) -> Path:
    path = tmp_path / "wine" / "wine.csv"
    path.parent.mkdir()
    wine_frame.to_csv(path, index=False)  # type: ignore[attr-defined]
    return path

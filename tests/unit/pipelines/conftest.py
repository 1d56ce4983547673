"""Fixtures of the pipelines tests: the test flows loaded by path, a real dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

FLOWS = Path(__file__).with_name("flows.py")


@pytest.fixture
def flows() -> ModuleType:
    """``flows.py`` imported by path (the way the CLI imports a pipeline file)."""
    from loopline.pipelines.worker import import_file

    return import_file(str(FLOWS))  # type: ignore[no-any-return]


@pytest.fixture
def cancer(tmp_path: Path) -> str:
    """scikit-learn's breast cancer table as dataset version ``cancer@1``."""
    from sklearn.datasets import load_breast_cancer

    import loopline.data

    frame = load_breast_cancer(as_frame=True).frame
    path = tmp_path / "cancer.csv"
    frame.to_csv(path, index=False)
    return str(loopline.data.add(path, name="cancer").ref)

"""Fixtures of the model tests: real bundled datasets, a clean SDK, model folders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd


@pytest.fixture
def sdk() -> Iterator[None]:
    """Autolog off after the test (tests/conftest.py gives each test a fresh SDK)."""
    yield
    from loopline.models.autologging import disable

    disable()


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer: 569 rows, 30 float columns, a binary target."""
    from sklearn.datasets import load_breast_cancer

    data: Any = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="session")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    """Wine: 178 rows, 13 float columns, three classes."""
    from sklearn.datasets import load_wine

    data: Any = load_wine(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes: 442 rows, 10 float columns, a continuous target."""
    from sklearn.datasets import load_diabetes

    data: Any = load_diabetes(as_frame=True)
    return data.data, data.target


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A path for a model folder (not created)."""
    return tmp_path / "model"

"""Fixtures of the model tests: real bundled datasets, a clean SDK, model folders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd


def forget_sdk_state() -> None:
    """The fluent API and the data service keep process-wide state: drop it."""
    from loopline.tracking import fluent

    fluent._main_stack.clear()
    fluent._local.__dict__.clear()
    fluent._last = None
    if fluent._client is not None:
        client, fluent._client = fluent._client, None
        if client._writer is not None:
            client._writer.error = None
        client.close()
    fluent._experiment_id = None
    from loopline.data import api

    api.close()


@pytest.fixture
def sdk() -> Iterator[None]:
    """A fresh fluent SDK on the test's own LOOPLINE_HOME, autolog off afterwards."""
    forget_sdk_state()
    yield
    from loopline.models.autologging import disable

    disable()
    forget_sdk_state()


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

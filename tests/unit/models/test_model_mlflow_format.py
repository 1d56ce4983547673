"""Models saved by the real MLflow client load through the same interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from loopline.errors import UntrustedModelError
from loopline.models import load

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

Data = tuple["pd.DataFrame", "pd.Series"]


@pytest.fixture
def forest(wine: Data) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    x, y = wine
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)


def test_mlflow_skops_model_loads_without_trust(model_dir: Path, forest: Any, wine: Data) -> None:
    x, _ = wine
    mlflow_sklearn.save_model(
        forest,
        str(model_dir),
        serialization_format="skops",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        input_example=x.head(3),
        pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
    )
    loaded = load(model_dir)
    assert loaded.flavor == "mlflow.sklearn"
    np.testing.assert_array_equal(loaded.predict(x), forest.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), forest.predict_proba(x))
    assert loaded.signature is not None
    assert loaded.signature.inputs.names[0] == "alcohol"
    with pytest.raises(Exception, match="missing columns"):
        loaded.predict(x.drop(columns=["alcohol"]))


def test_mlflow_cloudpickle_model_needs_trust(model_dir: Path, forest: Any, wine: Data) -> None:
    x, _ = wine
    mlflow_sklearn.save_model(
        forest,
        str(model_dir),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        load(model_dir)
    np.testing.assert_array_equal(load(model_dir, trusted=True).predict(x), forest.predict(x))


def test_mlflow_python_model_needs_trust(model_dir: Path, wine: Data) -> None:
    import loopline_model_helpers as helpers
    import mlflow.pyfunc

    x, y = wine

    class MlflowCentroids(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inner = helpers.Centroids().fit(x, y)

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return self.inner.predict(model_input)

    mlflow.pyfunc.save_model(
        str(model_dir), python_model=MlflowCentroids(), pip_requirements=["numpy"]
    )
    with pytest.raises(UntrustedModelError):
        load(model_dir)
    loaded = load(model_dir, trusted=True)
    assert loaded.predict(x.head(3)).shape == (3,)


def test_mlflow_model_env_lists_its_requirements(model_dir: Path, forest: Any) -> None:
    from loopline.models import env

    mlflow_sklearn.save_model(
        forest,
        str(model_dir),
        serialization_format="skops",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    text = env(model_dir)
    assert "scikit-learn==" in text
    assert text.startswith("# Python 3.")

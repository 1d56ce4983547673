"""A real scikit-learn model, saved and loaded as the server loads it, shared by the module."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from loopline.serving.model import ServedModel

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from loopline.models import save_model
    from loopline.serving.model import load_served

    data = load_iris()
    frame = pd.DataFrame(data.data, columns=COLUMNS)
    model = LogisticRegression(max_iter=1000).fit(frame, data.target)
    folder = tmp_path_factory.mktemp("iris") / "model"
    save_model(model, folder, input_example=frame.head(3))
    return load_served(str(folder), name="iris")

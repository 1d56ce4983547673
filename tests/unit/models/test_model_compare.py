"""compare_versions(..., dataset=): two registered versions predict on a dataset version."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest

import loopline
import loopline.data
import loopline.registry
from loopline.errors import InvalidArgumentError
from loopline.registry.entities import VersionComparison

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

pytestmark = pytest.mark.usefixtures("sdk")
Data = tuple["pd.DataFrame", "pd.Series"]


def _dataset(tmp_path: Path, data: Data, name: str) -> str:
    x, y = data
    csv = tmp_path / f"{name}.csv"
    x.assign(target=y).to_csv(csv, index=False)
    loopline.data.add(csv, name)
    return f"{name}@1"


def _register(model: object, x: pd.DataFrame, name: str) -> None:
    with loopline.start_run():
        loopline.log_model(model, registered_model_name=name, input_example=x.head(3))


def test_two_classifiers_agree_and_are_scored_on_the_wine_dataset(
    tmp_path: Path, wine: Data
) -> None:
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.tree import DecisionTreeClassifier

    x, y = wine
    ref = _dataset(tmp_path, wine, "wine")
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, y)
    _register(stump, x, "grapes")
    _register(tree, x, "grapes")

    found = loopline.registry.compare_versions("grapes", 1, 2, dataset=ref, target="target")

    pred = found.predictions
    assert pred is not None
    assert (pred.dataset, pred.rows, pred.task, pred.target) == (
        "wine@1",
        178,
        "classification",
        "target",
    )
    a, b = stump.predict(x), tree.predict(x)
    assert pred.agreement == pytest.approx(float(np.mean(a == b)))
    assert 0 < pred.agreement < 1
    assert pred.mean_abs_diff is None
    assert pred.metrics_a["accuracy"] == pytest.approx(accuracy_score(y, a))
    assert pred.metrics_b["accuracy"] == pytest.approx(accuracy_score(y, b))
    assert pred.metrics_b["f1"] == pytest.approx(f1_score(y, b, average="macro"))
    assert pred.metrics_b["accuracy"] > pred.metrics_a["accuracy"]
    assert VersionComparison.from_dict(found.to_dict()) == found


def test_binary_f1_scores_label_one_on_the_breast_cancer_dataset(
    tmp_path: Path, cancer: Data
) -> None:
    from sklearn.metrics import f1_score
    from sklearn.tree import DecisionTreeClassifier

    x, y = cancer
    ref = _dataset(tmp_path, cancer, "cancer")
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
    _register(model, x, "tumour")
    _register(model, x, "tumour")
    loopline.registry.set_alias("tumour", "champion", 2)

    pred = loopline.registry.compare_versions(
        "tumour", 1, "champion", ref, target="target"
    ).predictions

    assert pred is not None
    assert pred.agreement == 1.0
    assert pred.metrics_a == pred.metrics_b
    assert pred.metrics_a["f1"] == pytest.approx(f1_score(y, model.predict(x)))


def test_two_regressors_are_compared_by_mean_absolute_difference(
    tmp_path: Path, diabetes: Data
) -> None:
    from sklearn.linear_model import LinearRegression, Ridge

    x, y = diabetes
    ref = _dataset(tmp_path, diabetes, "diabetes")
    linear, ridge = LinearRegression().fit(x, y), Ridge(alpha=1.0).fit(x, y)
    _register(linear, x, "progression")
    _register(ridge, x, "progression")

    pred = loopline.registry.compare_versions("progression", 1, 2, ref, target="target").predictions

    assert pred is not None
    assert pred.task == "regression"
    assert pred.agreement is None
    diff = np.abs(linear.predict(x) - ridge.predict(x))
    assert pred.mean_abs_diff == pytest.approx(float(diff.mean()))
    error = linear.predict(x) - y.to_numpy()
    assert pred.metrics_a["mae"] == pytest.approx(float(np.abs(error).mean()))
    assert pred.metrics_a["rmse"] == pytest.approx(math.sqrt(float((error**2).mean())))
    assert pred.metrics_a["rmse"] < pred.metrics_b["rmse"]


def test_without_a_target_only_agreement_and_a_wrong_target_is_named(
    tmp_path: Path, wine: Data
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = wine
    ref = _dataset(tmp_path, (x, y), "wine")
    _register(DecisionTreeClassifier(max_depth=2).fit(x, y), x, "grapes")
    _register(DecisionTreeClassifier(max_depth=3).fit(x, y), x, "grapes")
    with pytest.raises(InvalidArgumentError, match="target"):
        # the table still holds the label column, so the input does not match the signature
        loopline.registry.compare_versions("grapes", 1, 2, ref)
    with pytest.raises(InvalidArgumentError, match="no column 'label'"):
        loopline.registry.compare_versions("grapes", 1, 2, ref, target="label")
    with pytest.raises(InvalidArgumentError, match="needs a dataset"):
        loopline.registry.compare_versions("grapes", 1, 2, target="target")
    features = tmp_path / "features.csv"
    x.to_csv(features, index=False)
    loopline.data.add(features, "features")
    pred = loopline.registry.compare_versions("grapes", 1, 2, "features@1").predictions
    assert pred is not None
    assert pred.metrics_a == {}
    assert pred.agreement is not None
    assert pred.agreement > 0.5

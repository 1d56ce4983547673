"""ONNX export of scikit-learn models: checked before it is kept, preferred on request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

from loopline.errors import CheckFailedError, InvalidArgumentError
from loopline.models import load, save_model
from loopline.models.metadata import MODEL_FILE

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

Data = tuple["pd.DataFrame", "pd.Series"]


def test_classifier_export_is_checked_recorded_and_preferred(model_dir: Path, cancer: Data) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = cancer
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=25, random_state=0))
    model.fit(x, y)
    save_model(model, model_dir, input_example=x.head(50), onnx=True)
    doc = yaml.safe_load((model_dir / MODEL_FILE).read_text())
    onnx = doc["alternatives"]["onnx"]
    assert onnx["loader"]["file"] == "model.onnx"
    assert onnx["check"]["rows"] == 50
    assert onnx["check"]["max_abs_diff"] <= onnx["check"]["tolerance"]
    assert "model.onnx" in {f["path"] for f in doc["files"]}

    native, exported = load(model_dir), load(model_dir, prefer="onnx")
    assert (native.flavor, exported.flavor) == ("sklearn", "onnx")
    agree = np.mean(exported.predict(x) == model.predict(x))
    assert agree > 0.99  # float32 thresholds may flip a borderline row outside the example
    far = np.abs(exported.predict_proba(x) - model.predict_proba(x)).max(axis=1) > 1e-3
    assert far.mean() < 0.01  # one tree's vote flips on a float32 threshold, rarely
    with pytest.raises(Exception, match="missing columns"):
        exported.predict(x.drop(columns=["mean radius"]))  # the signature still applies


def test_regressor_export(model_dir: Path, diabetes: Data) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes
    model = Ridge().fit(x, y)
    save_model(model, model_dir, input_example=x.head(20), onnx=True)
    exported = load(model_dir, prefer="onnx")
    np.testing.assert_allclose(exported.predict(x).ravel(), model.predict(x), rtol=1e-4)


def test_an_export_that_disagrees_is_refused_and_not_kept(
    model_dir: Path, diabetes: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import Ridge

    from loopline.models.flavors import onnx as onnx_flavor

    x, y = diabetes
    real_predict = onnx_flavor.OnnxPredictor.predict
    monkeypatch.setattr(
        onnx_flavor.OnnxPredictor, "predict", lambda self, data: real_predict(self, data) + 1.0
    )
    with pytest.raises(CheckFailedError, match="differs from the model by up to 1"):
        save_model(Ridge().fit(x, y), model_dir, input_example=x.head(20), onnx=True)
    assert not model_dir.exists()


def test_export_needs_an_example_and_a_sklearn_model(model_dir: Path, diabetes: Data) -> None:
    import loopline_model_helpers as helpers
    from sklearn.linear_model import Ridge

    x, y = diabetes
    with pytest.raises(InvalidArgumentError, match="needs an input_example"):
        save_model(Ridge().fit(x, y), model_dir, onnx=True)
    with pytest.raises(InvalidArgumentError, match="for scikit-learn models, not pyfunc"):
        save_model(helpers.Centroids(), model_dir, input_example=x.head(2), onnx=True)


def test_prefer_falls_back_to_the_native_flavor_without_an_export(
    model_dir: Path, diabetes: Data
) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes
    save_model(Ridge().fit(x, y), model_dir, input_example=x.head(2))
    assert load(model_dir, prefer="onnx").flavor == "sklearn"
    with pytest.raises(InvalidArgumentError, match="unknown preference"):
        load(model_dir, prefer="tensorrt")

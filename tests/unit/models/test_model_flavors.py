"""Each flavor round-trips on real data: the loaded model predicts what the original did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import yaml

from loopline.errors import UntrustedModelError
from loopline.models import load, save_model
from loopline.models.metadata import MODEL_FILE

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

Data = tuple["pd.DataFrame", "pd.Series"]


def _round_trip(model: Any, path: Path, x: Any, **kwargs: Any) -> Any:
    save_model(model, path, input_example=x[:5], **kwargs)
    return load(path, trusted=kwargs.pop("trusted", False))


# -- scikit-learn -----------------------------------------------------------------------
def test_sklearn_forest_round_trips_with_its_recorded_skops_types(
    model_dir: Path, wine: Data
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = wine
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    loaded = _round_trip(model, model_dir, x)
    assert loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    doc = yaml.safe_load((model_dir / MODEL_FILE).read_text())
    assert doc["loader"]["trusted_types"] == ["sklearn.tree._tree.Tree"]


def test_sklearn_regressor_round_trips(model_dir: Path, diabetes: Data) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    x, y = diabetes
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(x, y)
    loaded = _round_trip(model, model_dir, x)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    assert not loaded.has_proba


def test_skops_type_not_recorded_at_save_time_is_refused(model_dir: Path, wine: Data) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = wine
    save_model(RandomForestClassifier(n_estimators=3).fit(x, y), model_dir)
    doc = yaml.safe_load((model_dir / MODEL_FILE).read_text())
    doc["loader"]["trusted_types"] = []
    (model_dir / MODEL_FILE).write_text(yaml.safe_dump(doc))
    with pytest.raises(UntrustedModelError, match=r"sklearn\.tree\._tree\.Tree"):
        load(model_dir)
    assert load(model_dir, trusted=True).predict(x.head(2)).shape == (2,)


def test_skops_type_from_outside_sklearn_needs_trust_even_when_recorded(
    model_dir: Path, wine: Data
) -> None:
    import loopline_model_helpers as helpers
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    x, y = wine
    model = make_pipeline(
        FunctionTransformer(helpers.Doubler().predict), DecisionTreeClassifier(random_state=0)
    ).fit(x, y)
    save_model(model, model_dir)
    recorded = yaml.safe_load((model_dir / MODEL_FILE).read_text())["loader"]["trusted_types"]
    assert any(t.startswith("loopline_model_helpers") for t in recorded)
    with pytest.raises(UntrustedModelError, match="outside scikit-learn, NumPy and SciPy"):
        load(model_dir)
    loaded = load(model_dir, trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_pickled_sklearn_model_loads_only_when_trusted(model_dir: Path, cancer: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = cancer
    model = LogisticRegression(max_iter=5000).fit(x, y)
    save_model(model, model_dir, options={"serialization": "cloudpickle"})
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        load(model_dir)
    np.testing.assert_array_equal(load(model_dir, trusted=True).predict(x), model.predict(x))


# -- XGBoost ----------------------------------------------------------------------------
def test_xgboost_classifier_and_booster_round_trip(tmp_path: Path, wine: Data) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = wine
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
    loaded = _round_trip(clf, tmp_path / "clf", x)
    assert loaded.flavor == "xgboost"
    assert (tmp_path / "clf" / "model.ubj").is_file()
    assert any(r.startswith(("xgboost==", "xgboost-cpu==")) for r in loaded.requirements)
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), clf.predict_proba(x), rtol=1e-6)

    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), 10)
    loaded = _round_trip(booster, tmp_path / "booster", x, options={"format": "json"})
    assert (tmp_path / "booster" / "model.json").is_file()
    np.testing.assert_allclose(loaded.predict(x), booster.predict(xgb.DMatrix(x)), rtol=1e-6)


# -- LightGBM ---------------------------------------------------------------------------
def test_lightgbm_wrappers_and_booster_round_trip(
    tmp_path: Path, wine: Data, diabetes: Data, cancer: Data
) -> None:
    lgb = pytest.importorskip("lightgbm")
    for name, (x, y) in {"multi": wine, "binary": cancer}.items():
        clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
        loaded = _round_trip(clf, tmp_path / name, x)
        assert loaded.flavor == "lightgbm"
        np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
        np.testing.assert_allclose(loaded.predict_proba(x), clf.predict_proba(x), rtol=1e-9)
    x, y = diabetes
    reg = lgb.LGBMRegressor(n_estimators=20, verbose=-1).fit(x, y)
    np.testing.assert_allclose(_round_trip(reg, tmp_path / "reg", x).predict(x), reg.predict(x))
    booster = lgb.train({"verbose": -1}, lgb.Dataset(x, y), 10)
    loaded = _round_trip(booster, tmp_path / "booster", x)
    np.testing.assert_allclose(loaded.predict(x), booster.predict(x))
    assert (tmp_path / "booster" / "model.txt").read_text().startswith("tree")


# -- ONNX -------------------------------------------------------------------------------
def test_onnx_model_round_trips(model_dir: Path, cancer: Data) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    x, y = cancer
    model = LogisticRegression(max_iter=5000).fit(x, y)
    arr = x.to_numpy(dtype=np.float32)
    proto = skl2onnx.to_onnx(model, arr[:1], options={"zipmap": False})
    loaded = _round_trip(proto, model_dir, arr)
    assert loaded.flavor == "onnx"
    np.testing.assert_array_equal(loaded.predict(arr), model.predict(x))


# -- PyTorch ----------------------------------------------------------------------------
def test_torch_state_dict_round_trips_without_pickle(model_dir: Path, wine: Data) -> None:
    torch = pytest.importorskip("torch")
    import loopline_model_helpers as helpers

    x, _ = wine
    arr = x.to_numpy(dtype=np.float32)
    net = helpers.torch_module_class()(n_in=13, n_out=3)
    loaded = _round_trip(net, model_dir, arr, options={"init_kwargs": {"n_in": 13, "n_out": 3}})
    assert loaded.flavor == "torch"
    with torch.no_grad():
        want = net(torch.from_numpy(arr)).numpy()
    np.testing.assert_allclose(loaded.predict(arr), want, rtol=1e-6)
    assert yaml.safe_load((model_dir / MODEL_FILE).read_text())["loader"]["class"] == (
        "loopline_model_helpers:TinyNet"
    )


def test_torch_export_needs_trust(model_dir: Path, wine: Data) -> None:
    torch = pytest.importorskip("torch")
    x, _ = wine
    arr = x.to_numpy(dtype=np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    save_model(net, model_dir, input_example=arr[:5], options={"mode": "export"})
    with pytest.raises(UntrustedModelError):
        load(model_dir)
    with torch.no_grad():
        want = net(torch.from_numpy(arr)).numpy()
    np.testing.assert_allclose(load(model_dir, trusted=True).predict(arr), want, rtol=1e-5)


# -- generic Python models --------------------------------------------------------------
def test_pyfunc_by_import_path_loads_without_pickle(model_dir: Path, wine: Data) -> None:
    import loopline_model_helpers as helpers

    x, y = wine
    model = helpers.Centroids().fit(x, y)
    loaded = _round_trip(model, model_dir, x)
    assert loaded.flavor == "pyfunc"
    doc = yaml.safe_load((model_dir / MODEL_FILE).read_text())
    assert doc["loader"] == {
        "serialization": "import",
        "class": "loopline_model_helpers:Centroids",
        "data": "data",
    }
    assert not list(model_dir.rglob("*.pkl"))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_pickled_pyfunc_needs_trust(model_dir: Path) -> None:
    import loopline_model_helpers as helpers

    save_model(helpers.Doubler(), model_dir, input_example=np.arange(6.0).reshape(3, 2))
    with pytest.raises(UntrustedModelError, match=r"model\.pkl is stored with cloudpickle"):
        load(model_dir)
    assert load(model_dir, trusted=True).predict(np.ones((1, 2))).tolist() == [[2.0, 2.0]]


def test_a_model_no_flavor_knows_is_refused(model_dir: Path) -> None:
    from loopline.errors import InvalidArgumentError

    with pytest.raises(
        InvalidArgumentError, match=r"no flavor knows how to save a builtins\.object"
    ):
        save_model(object(), model_dir)

"""Signatures: inferred from examples, enforced at prediction time with named errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from loopline.errors import SignatureError
from loopline.models.signature import (
    ColumnSpec,
    Schema,
    Signature,
    TensorSpec,
    enforce,
    infer_schema,
    infer_signature,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_infers_columns_from_a_frame_with_mixed_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "n": np.array([1, 2], dtype="int32"),
            "x": [0.5, 1.5],
            "flag": [True, False],
            "city": ["a", "b"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "kind": pd.Categorical(["u", "v"]),
            "maybe": pd.array([1, None], dtype="Int64"),
        }
    )
    schema = infer_schema(frame)
    assert [(c.name, c.dtype) for c in schema.columns] == [
        ("n", "int32"),
        ("x", "float64"),
        ("flag", "bool"),
        ("city", "string"),
        ("when", "datetime"),
        ("kind", "category"),
        ("maybe", "int64"),
    ]


def test_infers_a_tensor_from_an_array_and_keeps_the_batch_dimension_free() -> None:
    assert infer_schema(np.zeros((5, 2, 3), dtype="float32")).tensor == TensorSpec(
        "float32", (-1, 2, 3)
    )
    assert infer_schema([1, 2, 3]).tensor == TensorSpec("int64", (-1,))


def test_signature_round_trips_through_its_dict_form() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1.0]}), np.array([1, 0]))
    assert Signature.from_dict(sig.to_dict()) == sig
    assert sig.outputs is not None
    assert sig.outputs.tensor == TensorSpec("int64", (-1,))


def test_missing_extra_and_mistyped_columns_are_all_named(
    cancer: tuple[pd.DataFrame, pd.Series],
) -> None:
    x, _ = cancer
    schema = infer_schema(x)
    bad = x.drop(columns=["mean radius", "worst area"]).assign(
        patient_id=1, **{"mean texture": "high"}
    )
    with pytest.raises(SignatureError) as info:
        enforce(schema, bad)
    err = info.value
    assert err.missing == ["mean radius", "worst area"]
    assert err.extra == ["patient_id"]
    assert err.mistyped == [("mean texture", "string", "float64")]
    for name in ("mean radius", "worst area", "patient_id", "mean texture"):
        assert name in str(err)


def test_safe_casts_are_applied_and_columns_reordered() -> None:
    schema = Schema(columns=(ColumnSpec("a", "float64"), ColumnSpec("b", "int64")))
    out = enforce(schema, pd.DataFrame({"b": np.array([1, 2], dtype="int8"), "a": [3, 4]}))
    assert list(out.columns) == ["a", "b"]
    assert out["a"].dtype == np.float64
    assert out["b"].dtype == np.int64


def test_unsafe_casts_are_refused_but_fitting_integers_pass() -> None:
    schema = Schema(columns=(ColumnSpec("a", "int32"),))
    with pytest.raises(SignatureError, match="'a' is float64, the model expects int32"):
        enforce(schema, pd.DataFrame({"a": [1.5]}))
    assert enforce(schema, pd.DataFrame({"a": [7]}))["a"].dtype == np.int32
    with pytest.raises(SignatureError, match="'a' is int64"):
        enforce(schema, pd.DataFrame({"a": [2**40]}))


def test_dicts_and_arrays_are_accepted_for_column_signatures() -> None:
    schema = Schema(columns=(ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    assert enforce(schema, {"a": 1.0, "b": 2.0}).shape == (1, 2)
    assert list(enforce(schema, np.ones((3, 2))).columns) == ["a", "b"]
    with pytest.raises(SignatureError, match=r"shape \(3, 5\).*2 columns \['a', 'b'\]"):
        enforce(schema, np.ones((3, 5)))


def test_tensor_signatures_check_shape_and_dtype() -> None:
    schema = Schema(tensor=TensorSpec("float32", (-1, 4)))
    assert enforce(schema, np.ones((2, 4), dtype="int16")).dtype == np.float32
    with pytest.raises(SignatureError, match=r"shape \(2, 3\)"):
        enforce(schema, np.ones((2, 3), dtype="float32"))
    with pytest.raises(SignatureError, match="float64, the model expects float32"):
        enforce(schema, np.ones((2, 4), dtype="float64"))


def test_a_schema_is_columns_or_a_tensor() -> None:
    from loopline.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        Schema()


def test_loaded_model_enforces_the_signature(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopline.models import load, save_model

    x, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    loaded = load(tmp_path / "m")
    with pytest.raises(SignatureError, match="missing columns \\['proline'\\]"):
        loaded.predict(x.drop(columns=["proline"]))
    ints = x.round().astype("int64")  # int -> float is a safe cast
    np.testing.assert_array_equal(loaded.predict(ints), model.predict(ints.astype(float)))
    one = x.iloc[0].to_dict()
    assert loaded.predict(one).tolist() == model.predict(x.head(1)).tolist()


def test_the_model_errors_live_in_the_one_error_tree() -> None:
    import loopline.errors
    import loopline.models
    from loopline.models import errors as model_errors

    for name in ("SignatureError", "UntrustedModelError"):
        cls = getattr(loopline.errors, name)
        assert getattr(loopline.models, name) is cls
        assert getattr(model_errors, name) is cls
        assert name in loopline.errors.__all__
        assert name in (loopline.errors.__doc__ or "")
    assert issubclass(loopline.errors.SignatureError, loopline.errors.InvalidArgumentError)
    assert issubclass(loopline.errors.UntrustedModelError, loopline.errors.PermissionDeniedError)

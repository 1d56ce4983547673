"""Signatures: the input and output a model expects, as columns or as a tensor.

A signature is inferred from an input example (pandas and numpy dtypes) and, for
the output, from the model's prediction on that example. At prediction time the
input is checked against it: missing, unexpected and mistyped columns are named,
and safe casts (``int`` to ``float``, ``float32`` to ``float64``, a smaller integer
type) are applied.

>>> import pandas as pd
>>> sig = infer_signature(pd.DataFrame({"age": [31, 45], "income": [1.5, 2.0]}))
>>> sig.inputs
Schema(columns=(ColumnSpec(name='age', dtype='int64'), ColumnSpec(name='income', dtype='float64')))
>>> frame = enforce(sig.inputs, pd.DataFrame({"income": [3.0], "age": [50]}))
>>> list(frame.columns)
['age', 'income']
>>> enforce(sig.inputs, pd.DataFrame({"age": ["x"], "zip": [1]}))
Traceback (most recent call last):
...
loopline.errors.SignatureError: input does not match the model's signature: missing columns ['income']; unexpected columns ['zip']; column 'age' is string, the model expects int64 (see the model's signature with `loopline.models.load(uri).signature`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopline.errors import InvalidArgumentError, SignatureError

__all__ = [
    "ColumnSpec",
    "Schema",
    "Signature",
    "TensorSpec",
    "dtype_name",
    "enforce",
    "infer_schema",
    "infer_signature",
]

_INTS = {f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)}
_FLOATS = {"float16", "float32", "float64"}
_NUMERIC = _INTS | _FLOATS | {"bool"}
_TEXT = {"string", "category"}


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """A named column and its dtype (``float64``, ``int64``, ``bool``, ``string``...)."""

    name: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An array's dtype and shape; ``-1`` marks a dimension of any size (the batch)."""

    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class Schema:
    """Either named columns (a DataFrame) or one tensor (an array)."""

    columns: tuple[ColumnSpec, ...] = ()
    tensor: TensorSpec | None = None

    def __post_init__(self) -> None:
        if bool(self.columns) == (self.tensor is not None):
            raise InvalidArgumentError("a schema has either columns or a tensor, not both")

    @property
    def kind(self) -> str:
        return "tensor" if self.tensor is not None else "columns"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        if self.tensor is not None:
            return {"type": "tensor", **self.tensor.to_dict()}
        return {"type": "columns", "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        if data.get("type") == "tensor":
            return cls(tensor=TensorSpec(str(data["dtype"]), tuple(int(d) for d in data["shape"])))
        return cls(
            columns=tuple(ColumnSpec(str(c["name"]), str(c["dtype"])) for c in data["columns"])
        )

    def __repr__(self) -> str:
        if self.tensor is not None:
            return f"Schema(tensor={self.tensor!r})"
        return f"Schema(columns={self.columns!r})"


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes (``inputs``) and gives back (``outputs``, when known)."""

    inputs: Schema
    outputs: Schema | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": self.inputs.to_dict()}
        if self.outputs is not None:
            out["outputs"] = self.outputs.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        outputs = data.get("outputs")
        return cls(Schema.from_dict(data["inputs"]), Schema.from_dict(outputs) if outputs else None)


# -- dtypes ------------------------------------------------------------------------------
def dtype_name(dtype: Any, values: Any = None) -> str:
    """loopline's name for a pandas or numpy dtype (``values`` settles ``object`` columns).

    >>> dtype_name(np.dtype("float32")), dtype_name(pd.Int64Dtype()), dtype_name(np.dtype("<U3"))
    ('float32', 'int64', 'string')
    """
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # nullable Int64, Float64, boolean
    np_dtype = np.dtype(numpy_dtype if numpy_dtype is not None else dtype)
    kind = np_dtype.kind
    if kind == "M":
        return "datetime"
    if kind == "m":
        return "timedelta"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "O":
        if values is None:
            return "object"
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        return {"string": "string", "bytes": "binary", "empty": "object"}.get(inferred, "object")
    return str(np_dtype.name)


def _castable(got: str, want: str) -> bool:
    if got == want or want == "object":
        return True
    if got in _TEXT and want in _TEXT:
        return True
    if got in _NUMERIC and want in _NUMERIC:
        if got in _INTS and want in _FLOATS:
            return True  # as MLflow: integers are accepted where floats are expected
        return bool(np.can_cast(np.dtype(got), np.dtype(want), "safe"))
    return False


def _fits(values: Any, got: str, want: str) -> bool:
    """An integer column whose values fit a smaller integer type may be cast to it."""
    if got not in _INTS or want not in _INTS:
        return False
    arr = np.asarray(values)
    if arr.size == 0:
        return True
    info = np.iinfo(np.dtype(want))
    return bool(arr.min() >= info.min and arr.max() <= info.max)


# -- inference ---------------------------------------------------------------------------
def _as_frame(data: Any) -> pd.DataFrame | None:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else "0")
    if isinstance(data, dict):
        return dict_to_frame(data)
    return None


def dict_to_frame(data: dict[str, Any]) -> pd.DataFrame:
    """``{"col": [values]}`` or ``{"col": scalar}`` (one row) as a DataFrame."""
    if all(np.ndim(v) == 0 for v in data.values()):
        return pd.DataFrame({k: [v] for k, v in data.items()})
    return pd.DataFrame(data)


def infer_schema(data: Any) -> Schema:
    """The schema of a DataFrame, Series, dict of columns, array or list.

    >>> infer_schema(np.zeros((4, 3), dtype="float32"))
    Schema(tensor=TensorSpec(dtype='float32', shape=(-1, 3)))
    """
    frame = _as_frame(data)
    if frame is not None:
        return Schema(
            columns=tuple(
                ColumnSpec(str(name), dtype_name(frame[name].dtype, frame[name]))
                for name in frame.columns
            )
        )
    arr = np.asarray(data)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    values = arr.ravel() if arr.dtype.kind == "O" else None
    return Schema(tensor=TensorSpec(dtype_name(arr.dtype, values), (-1, *arr.shape[1:])))


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """A signature from an input example and, when given, the model's output on it."""
    outputs = infer_schema(model_output) if model_output is not None else None
    return Signature(infer_schema(model_input), outputs)


# -- enforcement -------------------------------------------------------------------------
def enforce(schema: Schema, data: Any) -> Any:
    """Check ``data`` against ``schema``; the data ready for the model (ordered, safely cast)."""
    if isinstance(data, dict):
        data = dict_to_frame(data)
    if schema.tensor is not None:
        return _enforce_tensor(schema.tensor, data)
    return _enforce_columns(schema, data)


def _enforce_tensor(spec: TensorSpec, data: Any) -> np.ndarray[Any, Any]:
    arr = data.to_numpy() if isinstance(data, (pd.DataFrame, pd.Series)) else np.asarray(data)
    got = dtype_name(arr.dtype, arr.ravel() if arr.dtype.kind == "O" else None)
    if len(spec.shape) != arr.ndim or any(
        want not in (-1, have) for want, have in zip(spec.shape, arr.shape, strict=False)
    ):
        raise SignatureError(
            detail=f"the input has shape {tuple(arr.shape)}, the model expects {spec.shape} (-1: any size)"
        )
    if got == spec.dtype or spec.dtype == "object":
        return arr
    if _castable(got, spec.dtype) or _fits(arr, got, spec.dtype):
        return arr.astype(np.dtype(spec.dtype))
    raise SignatureError(detail=f"the input's dtype is {got}, the model expects {spec.dtype}")


def _enforce_columns(schema: Schema, data: Any) -> pd.DataFrame:
    names = schema.names
    frame = _as_frame(data)
    if frame is None:
        arr = np.asarray(data)
        if arr.ndim == 1 and len(names) > 1:
            arr = arr.reshape(1, -1)  # one row
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise SignatureError(
                detail=f"an array of shape {tuple(arr.shape)} was given; the model expects "
                f"{len(names)} columns {names}"
            )
        frame = pd.DataFrame(arr, columns=names)
    by_name = {str(c): c for c in frame.columns}
    missing = [n for n in names if n not in by_name]
    extra = [str(c) for c in frame.columns if str(c) not in set(names)]
    mistyped: list[tuple[str, str, str]] = []
    casts: dict[Any, str] = {}
    for spec in schema.columns:
        label = by_name.get(spec.name)
        if label is None:
            continue
        column = frame[label]
        got = dtype_name(column.dtype, column)
        if got == spec.dtype:
            continue
        if _castable(got, spec.dtype) or _fits(column, got, spec.dtype):
            if spec.dtype in _NUMERIC:
                casts[label] = spec.dtype
        else:
            mistyped.append((spec.name, got, spec.dtype))
    if missing or extra or mistyped:
        raise SignatureError(missing=missing, extra=extra, mistyped=mistyped)
    ordered = [by_name[n] for n in names]
    out = frame if list(frame.columns) == ordered else frame[ordered]
    return out.astype(casts) if casts else out

"""A model as the inference server holds it: loaded once, its input checked fast.

Requests arrive as JSON or CSV; :class:`ServedModel` turns their values into what
the model predicts on. When the signature's columns are all numeric (the common
case), values go straight into one NumPy array in the signature's column order, with
no DataFrame on the way: building a DataFrame and handing it to scikit-learn costs
several times the prediction itself. Other signatures go through pandas and
:func:`loopline.models.signature.enforce`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import InvalidArgumentError, SignatureError

if TYPE_CHECKING:
    from loopline.models.loaded import LoadedModel
    from loopline.models.signature import Schema

__all__ = ["Prediction", "ServedModel", "load_served", "resolve_uri"]

_INTS = {f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)}
_FLOATS = {"float16", "float32", "float64"}
NUMERIC = _INTS | _FLOATS | {"bool"}
_UNNAMED = "X does not have valid feature names"


@dataclass(slots=True)
class Prediction:
    """The model's answer for a batch: one output row per input row."""

    outputs: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None = None


@dataclass(eq=False, slots=True)
class ServedModel:
    """A loaded model with what the server needs to know about it.

    ``version`` is the registry version (``"3"``), the run id for ``runs:/`` URIs, or
    ``"0"`` for a folder.
    """

    name: str
    version: str
    uri: str
    loaded: LoadedModel
    columns: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    tensor_shape: tuple[int, ...] | None = None
    tensor_dtype: str | None = None
    numeric: bool = False
    allow_nan: bool = True
    classes: list[Any] | None = None
    unnamed_ok: bool = False
    """Arrays go in without feature names (checked against the signature already)."""
    argmax_classes: np.ndarray[Any, Any] | None = None
    """Set when the model's class is by definition its most probable one (see
    :func:`_argmax_classes`): ``predict`` is then derived from ``predict_proba``."""

    @property
    def flavor(self) -> str:
        return self.loaded.flavor

    @property
    def width(self) -> int | None:
        """Features per row, when the signature says."""
        if self.columns:
            return len(self.columns)
        if self.tensor_shape is not None and len(self.tensor_shape) == 2:
            return self.tensor_shape[1] if self.tensor_shape[1] > 0 else None
        return None

    def feature_names(self, width: int) -> list[str]:
        """Column names of the prediction log's ``in.`` columns."""
        if self.columns:
            return list(self.columns)
        return [str(i) for i in range(width)]

    # -- input ---------------------------------------------------------------------------
    def from_rows(self, rows: Any, names: list[str] | None = None) -> Any:
        """Rows (a list of lists, or an array) whose columns are ``names`` (signature order
        when None), checked and ready for :meth:`predict`."""
        if self.numeric:
            return self._numeric_rows(rows, names)
        import pandas as pd

        if names is None:
            if self.columns:
                names = self.columns
            else:
                return self._tensor(rows)
        try:
            frame = pd.DataFrame(rows, columns=names)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"the rows do not fit the columns {names}: {exc}") from exc
        return self.from_frame(frame)

    def from_columns(self, data: dict[str, Any]) -> Any:
        """``{column: values}`` checked and ready for :meth:`predict`."""
        missing = [c for c in self.columns if c not in data]
        extra = [c for c in data if c not in set(self.columns)] if self.columns else []
        if missing or extra:
            raise SignatureError(missing=missing, extra=extra)
        if self.numeric:
            arrays = []
            n: int | None = None
            for name, want in zip(self.columns, self.dtypes, strict=True):
                arr = np.asarray(data[name])
                arr = arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr
                if arr.ndim != 1:
                    raise SignatureError(
                        detail=f"column {name!r} has shape {arr.shape}; give one value per row"
                    )
                if n is not None and arr.shape[0] != n:
                    raise SignatureError(
                        detail=f"column {name!r} has {arr.shape[0]} values, the others {n}"
                    )
                n = arr.shape[0]
                self._check_kind(name, arr, want)
                arrays.append(arr)
            return self._finish(np.column_stack(arrays) if arrays else np.empty((0, 0)))
        import pandas as pd

        from loopline.models.signature import dict_to_frame

        frame = dict_to_frame(data) if self.columns else pd.DataFrame(data)
        return self.from_frame(frame)

    def from_frame(self, frame: Any) -> Any:
        """A DataFrame checked against the signature (pandas path, for CSV and files)."""
        if self.numeric:
            names = [str(c) for c in frame.columns]
            missing = [c for c in self.columns if c not in names]
            extra = [c for c in names if c not in set(self.columns)]
            if missing or extra:
                raise SignatureError(missing=missing, extra=extra)
            for name, want in zip(self.columns, self.dtypes, strict=True):
                self._check_kind(name, frame[name].to_numpy(), want)
            return self._finish(frame[self.columns].to_numpy(dtype=self._target_dtype()))
        return self.loaded.prepare(frame)

    def _tensor(self, rows: Any) -> Any:
        try:
            arr = np.asarray(rows)
        except ValueError as exc:
            raise InvalidArgumentError(f"the input is not a rectangular array: {exc}") from exc
        return self.loaded.prepare(arr)

    def _numeric_rows(self, rows: Any, names: list[str] | None) -> np.ndarray[Any, Any]:
        try:
            arr = np.asarray(rows)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"the rows are not a rectangular array: {exc}",
                hint=f"send rows of {len(self.columns)} values: {self.columns}",
            ) from exc
        if arr.ndim == 1 and arr.shape[0] == len(self.columns) and len(self.columns) > 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise SignatureError(
                detail=f"the input has shape {tuple(arr.shape)}; the model expects rows of "
                f"{len(self.columns)} columns {self.columns}"
            )
        if names is not None and names != self.columns:
            missing = [c for c in self.columns if c not in names]
            extra = [c for c in names if c not in set(self.columns)]
            if missing or extra or len(names) != arr.shape[1]:
                raise SignatureError(missing=missing, extra=extra)
            arr = arr[:, [names.index(c) for c in self.columns]]
        if arr.shape[1] != len(self.columns):
            raise SignatureError(
                detail=f"rows have {arr.shape[1]} values; the model expects "
                f"{len(self.columns)} columns {self.columns}"
            )
        if arr.dtype.kind not in "biuf":
            self._name_bad_column(arr)
        for i, want in enumerate(self.dtypes):
            if want in _INTS and arr.dtype.kind == "f":
                self._check_kind(self.columns[i], arr[:, i], want)
        return self._finish(arr)

    def _name_bad_column(self, arr: np.ndarray[Any, Any]) -> None:
        for i, name in enumerate(self.columns):
            column = arr[:, i]
            try:
                column.astype(np.float64)
            except (ValueError, TypeError):
                bad = next((v for v in column if not _is_number(v)), column[0])
                got = "null" if bad is None else "string" if isinstance(bad, str) else "object"
                raise SignatureError(mistyped=[(name, got, self.dtypes[i])]) from None
            if any(not _is_number(v) for v in column):
                raise SignatureError(mistyped=[(name, "string", self.dtypes[i])])

    def _check_kind(self, name: str, arr: np.ndarray[Any, Any], want: str) -> None:
        kind = arr.dtype.kind
        if kind in "biu":
            return
        if kind == "f":
            if want in _INTS and arr.size and not np.all(np.mod(arr[np.isfinite(arr)], 1) == 0):
                raise SignatureError(mistyped=[(name, str(arr.dtype), want)])
            return
        if kind == "O" and all(_is_number(v) for v in arr.ravel()):
            return
        got = "string" if kind in "USO" else str(arr.dtype)
        raise SignatureError(mistyped=[(name, got, want)])

    def _target_dtype(self) -> np.dtype[Any]:
        if all(d == "float32" for d in self.dtypes):
            return np.dtype(np.float32)
        if all(d in _INTS for d in self.dtypes):
            return np.dtype(np.int64)
        return np.dtype(np.float64)

    def _finish(self, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        try:
            out = arr.astype(self._target_dtype(), copy=False)
        except (ValueError, TypeError) as exc:
            raise SignatureError(detail=f"the values are not numbers: {exc}") from exc
        if not self.allow_nan and out.dtype.kind == "f" and not np.isfinite(out).all():
            rows, cols = np.nonzero(~np.isfinite(out))
            raise SignatureError(
                detail=f"column {self.columns[int(cols[0])]!r} holds NaN or infinity "
                f"(row {int(rows[0])}), which this model does not accept"
            )
        return out

    # -- prediction ----------------------------------------------------------------------
    def predict(self, data: Any) -> Prediction:
        """Predict on input from the ``from_*`` methods (or several of them concatenated)."""
        if not self.unnamed_ok:
            return self._predict(data)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_UNNAMED, category=UserWarning)
            return self._predict(data)

    def _predict(self, data: Any) -> Prediction:
        predictor = self.loaded._predictor
        if self.argmax_classes is not None:
            # One pass through scikit-learn's input checks instead of two (they cost more
            # than a small model's arithmetic): the class is the most probable one.
            likely = np.asarray(predictor.predict_proba(data), dtype=np.float64)
            return Prediction(self.argmax_classes[np.argmax(likely, axis=1)], likely)
        outputs = np.asarray(predictor.predict(data))
        proba = None
        if self.classes is not None:
            proba = np.asarray(predictor.predict_proba(data), dtype=np.float64)
        return Prediction(outputs, proba)

    def concat(self, parts: list[Any]) -> Any:
        """Several requests' inputs as one batch."""
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], np.ndarray):
            return np.concatenate(parts)
        import pandas as pd

        return pd.concat(parts, ignore_index=True)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "flavor": self.flavor,
            "columns": self.columns,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool | np.bool_)


def resolve_uri(uri: str) -> tuple[str, str, str]:
    """``(name, version, pinned uri)`` of a model URI: an alias is pinned to its version now.

    A ``runs:/`` URI's version is its run id; a folder's name is its base name.
    """
    from loopline.refs import parse_model_uri

    parsed = parse_model_uri(uri)
    if parsed.kind == "registered":
        import loopline.registry

        version = loopline.registry.resolve(uri)
        return version.name, str(version.version), version.uri
    if parsed.kind == "run":
        name = parsed.path.strip("/").rpartition("/")[2] or "model"
        return name, str(parsed.run_id), uri
    if parsed.kind == "logged":
        return parsed.name, "1", uri
    return os.path.basename(os.path.normpath(uri)) or "model", "0", uri


def load_served(uri: str, *, name: str | None = None, trusted: bool = False) -> ServedModel:
    """Load ``uri`` for serving; ``name`` overrides the name it answers under."""
    import loopline.models
    from loopline.refs import check_name

    found_name, version, pinned = resolve_uri(uri)
    loaded = loopline.models.load(pinned, trusted=trusted)
    return served_from(loaded, name=check_name(name or found_name), version=version, uri=pinned)


def served_from(loaded: LoadedModel, *, name: str, version: str, uri: str) -> ServedModel:
    """Wrap a loaded model, reading what serving needs from its signature."""
    served = ServedModel(name=name, version=version, uri=uri, loaded=loaded)
    signature = loaded.signature
    if signature is not None:
        _apply_schema(served, signature.inputs)
    raw = loaded.raw
    served.allow_nan = _allows_nan(raw)
    classes = getattr(raw, "classes_", None)
    if classes is not None and loaded.has_proba:
        served.classes = list(np.asarray(classes).tolist())
    # We check names and order against the signature and pass a bare array (a
    # DataFrame costs more than the prediction), so scikit-learn's warning that the
    # array has no feature names tells nothing.
    served.unnamed_ok = served.numeric and getattr(raw, "feature_names_in_", None) is not None
    if served.classes is not None:
        served.argmax_classes = _argmax_classes(raw)
    return served


# scikit-learn classifiers whose ``predict`` is the class of highest ``predict_proba``:
# forests and trees take the argmax of the same array; logistic regression thresholds the
# same scores that its probabilities are a monotone function of (they differ only for a
# score within 1e-16 of the boundary, where the probabilities tie at 0.5).
_ARGMAX_CLASSIFIERS = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
    }
)


def _argmax_classes(model: Any) -> np.ndarray[Any, Any] | None:
    """The classes ``predict`` picks from by the argmax of ``predict_proba``, else None."""
    final = model.steps[-1][1] if type(model).__name__ == "Pipeline" else model
    kind = type(final)
    if f"{kind.__module__}.{kind.__qualname__}" not in _ARGMAX_CLASSIFIERS:
        return None
    classes = getattr(final, "classes_", None)
    if classes is None or np.ndim(classes) != 1:  # multi-output classifiers keep predict
        return None
    return np.asarray(classes)


def _apply_schema(served: ServedModel, schema: Schema) -> None:
    if schema.tensor is not None:
        served.tensor_shape = tuple(schema.tensor.shape)
        served.tensor_dtype = schema.tensor.dtype
        return
    served.columns = [c.name for c in schema.columns]
    served.dtypes = [c.dtype for c in schema.columns]
    served.numeric = all(d in NUMERIC for d in served.dtypes)


def _allows_nan(model: Any) -> bool:
    """scikit-learn says whether an estimator takes NaN; other libraries are trusted to."""
    if not type(model).__module__.startswith("sklearn"):
        return True
    tags = getattr(model, "__sklearn_tags__", None)
    if tags is None:
        return False
    try:
        return bool(tags().input_tags.allow_nan)
    except (AttributeError, TypeError, ValueError):
        return False

"""MLflow's (and SageMaker's) scoring contract: ``POST /invocations``.

JSON bodies hold exactly one of ``dataframe_split`` (``{"columns": [...], "data":
[[...]]}``), ``dataframe_records`` (``[{"col": value}, ...]``), ``instances`` or
``inputs`` (rows, a dict of columns, or one row as a dict); ``text/csv`` bodies are
a header line and rows. The answer is ``{"predictions": [...]}``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from loopline.serving.model import Prediction, ServedModel

__all__ = ["encode_response", "parse"]

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_HINT = (
    'send {"dataframe_split": {"columns": [...], "data": [[...]]}}, '
    '{"dataframe_records": [{...}]}, {"instances": [...]} or {"inputs": ...}, or text/csv'
)


def parse(body: bytes, content_type: str, model: ServedModel) -> tuple[Any, int]:
    """The model's input and its row count."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        return _csv(body, model)
    if kind not in ("application/json", ""):
        raise InvalidArgumentError(
            f"unsupported content type {content_type!r}",
            hint="use application/json or text/csv",
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"the request body is not valid JSON: {exc}", hint=_HINT
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidArgumentError("the request body must be a JSON object", hint=_HINT)
    given = [k for k in _FORMATS if k in doc]
    if len(given) != 1:
        raise InvalidArgumentError(
            f"the body must hold exactly one of {list(_FORMATS)}, it holds {given or list(doc)}",
            hint=_HINT,
        )
    key = given[0]
    value = doc[key]
    if key == "dataframe_split":
        return _split(value, model)
    if key == "dataframe_records":
        return _records(value, model)
    return _instances(value, model)


def _split(value: Any, model: ServedModel) -> tuple[Any, int]:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidArgumentError(
            "dataframe_split needs {'columns': [...], 'data': [[...], ...]}", hint=_HINT
        )
    columns = value.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise InvalidArgumentError("dataframe_split's columns must be a list of names")
    rows = value["data"]
    return model.from_rows(rows, columns), len(rows)


def _records(value: Any, model: ServedModel) -> tuple[Any, int]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InvalidArgumentError("dataframe_records must be a list of objects", hint=_HINT)
    if not value:
        raise InvalidArgumentError("dataframe_records is empty")
    if model.numeric:
        names = list(value[0])
        try:
            rows = [[r[c] for c in names] for r in value]
        except KeyError as exc:
            raise InvalidArgumentError(f"a record lacks column {exc.args[0]!r}") from None
        if any(len(r) != len(names) for r in value):
            extra = sorted({k for r in value for k in r} - set(names))
            raise InvalidArgumentError(f"records have different columns: {extra}")
        return model.from_rows(rows, names), len(rows)
    import pandas as pd

    return model.from_frame(pd.DataFrame.from_records(value)), len(value)


def _instances(value: Any, model: ServedModel) -> tuple[Any, int]:
    if isinstance(value, dict):
        if all(np.ndim(v) == 0 for v in value.values()):
            value = {k: [v] for k, v in value.items()}
        data = model.from_columns(value)
        return data, len(data)
    if not isinstance(value, list) or not value:
        raise InvalidArgumentError("instances/inputs must be a non-empty list or an object")
    if all(isinstance(r, dict) for r in value):
        return _records(value, model)
    data = model.from_rows(value)
    return data, len(data)


def _csv(body: bytes, model: ServedModel) -> tuple[Any, int]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"the CSV body does not parse: {exc}") from exc
    if frame.empty:
        raise InvalidArgumentError("the CSV body has no rows", hint="send a header line, then rows")
    return model.from_frame(frame), len(frame)


def encode_response(prediction: Prediction) -> bytes:
    """``{"predictions": [...]}`` as MLflow answers."""
    outputs = prediction.outputs
    if outputs.dtype.kind in "biuf":
        return orjson.dumps(
            {"predictions": np.ascontiguousarray(outputs)}, option=orjson.OPT_SERIALIZE_NUMPY
        )
    return orjson.dumps({"predictions": outputs.tolist()})

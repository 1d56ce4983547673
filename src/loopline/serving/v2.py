"""The Open Inference Protocol (V2: KServe, Triton, Seldon MLServer): tensors in and out.

A request names its tensors (``name``, ``shape``, ``datatype``, ``data``). A model
with a column signature takes either one tensor of shape ``[rows, columns]`` in the
signature's column order, or one tensor per column named after it. Triton's binary
tensor extension is spoken too: with an ``Inference-Header-Content-Length`` header,
the JSON header is followed by the raw bytes of the tensors that declare
``binary_data_size``; outputs come back binary when the request asks
(``binary_data_output``, or ``binary_data`` on a requested output).

>>> datatype_of(np.dtype("float32")), datatype_of(np.dtype("<U4"))
('FP32', 'BYTES')
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from loopline.errors import InvalidArgumentError, SignatureError

if TYPE_CHECKING:
    from loopline.serving.model import Prediction, ServedModel

__all__ = ["DTYPES", "V2Request", "datatype_of", "encode_response", "model_metadata", "parse"]

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": object,
}
_BY_NUMPY = {np.dtype(v).name: k for k, v in DTYPES.items() if v is not object}
_SIG_TO_V2 = {**_BY_NUMPY, "string": "BYTES"}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a NumPy dtype (strings and objects are ``BYTES``)."""
    return _BY_NUMPY.get(dtype.name, "BYTES")


class V2Request:
    """A decoded infer request: the model's input, its row count and what to send back."""

    __slots__ = ("binary_outputs", "data", "id", "outputs", "rows")

    def __init__(
        self, data: Any, rows: int, id: str | None, outputs: list[str] | None, binary: set[str]
    ) -> None:
        self.data = data
        self.rows = rows
        self.id = id
        self.outputs = outputs
        self.binary_outputs = binary


def parse(body: bytes, model: ServedModel, header_length: int | None = None) -> V2Request:
    """Decode an infer request for ``model``; a 4xx-worthy error names what is wrong."""
    blob = b""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidArgumentError(
                f"Inference-Header-Content-Length is {header_length}, the body {len(body)} bytes"
            )
        body, blob = body[:header_length], body[header_length:]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidArgumentError(
            'an infer request is {"inputs": [{"name", "shape", "datatype", "data"}, ...]}'
        )
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    offset = 0
    for spec in doc["inputs"]:
        name, arr, offset = _tensor(spec, blob, offset)
        tensors[name] = arr
    outputs, binary = _requested_outputs(doc)
    req_id = doc.get("id")
    data, rows = _model_input(tensors, model)
    return V2Request(data, rows, str(req_id) if req_id is not None else None, outputs, binary)


def _tensor(spec: Any, blob: bytes, offset: int) -> tuple[str, np.ndarray[Any, Any], int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidArgumentError("each input needs a name, a shape, a datatype and data")
    name = spec["name"]
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidArgumentError(f"input {name!r}: shape must be a list of sizes, got {shape!r}")
    datatype = spec.get("datatype")
    if datatype not in DTYPES:
        raise InvalidArgumentError(
            f"input {name!r}: unknown datatype {datatype!r}", hint=f"use one of {list(DTYPES)}"
        )
    size = int(np.prod(shape)) if shape else 1
    params = spec.get("parameters") or {}
    binary_size = params.get("binary_data_size") if isinstance(params, dict) else None
    if binary_size is not None:
        raw = blob[offset : offset + int(binary_size)]
        if len(raw) != int(binary_size):
            raise InvalidArgumentError(f"input {name!r}: the body ends before its binary data")
        offset += int(binary_size)
        arr = _from_binary(name, raw, datatype)
    else:
        if "data" not in spec:
            raise InvalidArgumentError(f"input {name!r} has no data")
        try:
            arr = np.asarray(spec["data"], dtype=DTYPES[datatype])
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidArgumentError(f"input {name!r}: data is not {datatype}: {exc}") from exc
    if arr.size != size:
        raise InvalidArgumentError(
            f"input {name!r} holds {arr.size} values; shape {shape} needs {size}"
        )
    return name, arr.reshape(shape), offset


def _from_binary(name: str, raw: bytes, datatype: str) -> np.ndarray[Any, Any]:
    if datatype != "BYTES":
        dtype = np.dtype(DTYPES[datatype])
        if len(raw) % dtype.itemsize:
            raise InvalidArgumentError(f"input {name!r}: {len(raw)} bytes is not whole {datatype}")
        return np.frombuffer(raw, dtype=dtype)
    items: list[str] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidArgumentError(f"input {name!r}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, pos)
        items.append(raw[pos + 4 : pos + 4 + length].decode("utf-8", "replace"))
        pos += 4 + length
    return np.asarray(items, dtype=object)


def _requested_outputs(doc: dict[str, Any]) -> tuple[list[str] | None, set[str]]:
    params = doc.get("parameters") or {}
    all_binary = bool(params.get("binary_data_output")) if isinstance(params, dict) else False
    requested = doc.get("outputs")
    if not isinstance(requested, list) or not requested:
        return None, {"*"} if all_binary else set()
    names: list[str] = []
    binary: set[str] = set()
    for out in requested:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidArgumentError("each requested output needs a name")
        names.append(out["name"])
        out_params = out.get("parameters") or {}
        if all_binary or (isinstance(out_params, dict) and out_params.get("binary_data")):
            binary.add(out["name"])
    return names, binary


def _model_input(tensors: dict[str, np.ndarray[Any, Any]], model: ServedModel) -> tuple[Any, int]:
    if len(tensors) == 1:
        name, arr = next(iter(tensors.items()))
        if model.columns and name in model.columns and len(model.columns) > 1:
            raise SignatureError(missing=[c for c in model.columns if c != name])
        if not (model.columns and name in model.columns):
            if arr.ndim == 1 and model.width and arr.shape[0] == model.width:
                arr = arr.reshape(1, -1)  # one row sent flat
            data = model.from_rows(arr)
            return data, int(arr.shape[0]) if arr.ndim else 1
    if not model.columns:
        raise InvalidArgumentError(
            f"this model takes one tensor; the request has {len(tensors)}: {list(tensors)}"
        )
    data = model.from_columns(tensors)
    return data, int(next(iter(tensors.values())).shape[0])


# -- responses ------------------------------------------------------------------------------
def _outputs(model: ServedModel, prediction: Prediction) -> list[tuple[str, np.ndarray[Any, Any]]]:
    found = [("predict", prediction.outputs)]
    if prediction.proba is not None:
        found.append(("predict_proba", prediction.proba))
    return found


def encode_response(
    model: ServedModel, prediction: Prediction, request: V2Request, request_id: str
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary tensors follow it."""
    tensors = _outputs(model, prediction)
    if request.outputs is not None:
        known = dict(tensors)
        unknown = [n for n in request.outputs if n not in known]
        if unknown:
            raise InvalidArgumentError(
                f"unknown outputs {unknown}", hint=f"this model gives {list(known)}"
            )
        tensors = [(n, known[n]) for n in request.outputs]
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr in tensors:
        datatype = datatype_of(arr.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if "*" in request.binary_outputs or name in request.binary_outputs:
            raw = _to_binary(arr, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif datatype == "BYTES":
            entry["data"] = [str(v) for v in arr.ravel().tolist()]
        else:
            entry["data"] = np.ascontiguousarray(arr.ravel())
        entries.append(entry)
    doc = {
        "model_name": model.name,
        "model_version": model.version,
        "id": request.id if request.id is not None else request_id,
        "outputs": entries,
    }
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def _to_binary(arr: np.ndarray[Any, Any], datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(arr).tobytes()
    parts = []
    for value in arr.ravel().tolist():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """``GET /v2/models/{name}``: name, versions, platform and tensors."""
    if model.columns:
        if model.numeric:
            dtype = (
                _SIG_TO_V2.get(model.dtypes[0], "FP64") if len(set(model.dtypes)) == 1 else "FP64"
            )
            inputs = [{"name": "input", "datatype": dtype, "shape": [-1, len(model.columns)]}]
        else:
            inputs = [
                {"name": c, "datatype": _SIG_TO_V2.get(d, "BYTES"), "shape": [-1]}
                for c, d in zip(model.columns, model.dtypes, strict=True)
            ]
    elif model.tensor_shape is not None:
        dtype = _SIG_TO_V2.get(model.tensor_dtype or "", "BYTES")
        inputs = [{"name": "input", "datatype": dtype, "shape": list(model.tensor_shape)}]
    else:
        inputs = []
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]
    if model.classes is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]}
        )
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": f"loopline_{model.flavor}",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"columns": model.columns, "classes": model.classes},
    }

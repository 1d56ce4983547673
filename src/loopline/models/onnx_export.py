"""ONNX export of scikit-learn models (skl2onnx), kept only when it predicts the same.

The exported graph takes one float32 matrix. Before the file is kept, it predicts
on the input example and its answers are compared with the original model's:
labels must be equal, probabilities and regression outputs within the tolerance.
A model that fails the check is refused with the differences named, never kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopline.errors import CheckFailedError, InvalidArgumentError
from loopline.models.flavors.base import pinned, require
from loopline.models.flavors.onnx import FILE, OnnxPredictor, session

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.models.flavors.base import Predictor

__all__ = ["TOLERANCE", "export_sklearn"]

TOLERANCE = 1e-4
"""Absolute and relative tolerance of the check (float32 arithmetic in the graph)."""


def _matrix(example: Any) -> np.ndarray[Any, Any]:
    frame = example if isinstance(example, pd.DataFrame) else None
    try:
        arr = (
            frame.to_numpy(dtype=np.float32)
            if frame is not None
            else np.asarray(example, dtype=np.float32)
        )
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "ONNX export needs numeric input: the example has non-numeric columns",
            hint="save without onnx=True, or encode the columns inside the model",
        ) from exc
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def export_sklearn(
    model: Any, example: Any, original: Predictor, dest: Path, *, tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """Write ``dest/model.onnx`` for a scikit-learn model; the alternative's record."""
    skl2onnx = require("skl2onnx", "skl2onnx", "onnx")
    from sklearn.base import is_classifier

    matrix = _matrix(example)
    classifier = bool(is_classifier(model))
    options = {"zipmap": False} if classifier else None
    try:
        proto = skl2onnx.to_onnx(model, matrix[:1], options=options)
    except Exception as exc:
        raise InvalidArgumentError(
            f"skl2onnx cannot convert this {type(model).__qualname__}: {exc}",
            hint="save without onnx=True",
        ) from exc
    loader: dict[str, Any] = {"file": FILE, "label_output": proto.graph.output[0].name}
    if classifier and len(proto.graph.output) > 1:
        loader["proba_output"] = proto.graph.output[1].name
    exported = OnnxPredictor(session(proto.SerializeToString()), loader)
    diff = _compare(original, exported, example, matrix, classifier, tolerance)
    (dest / FILE).write_bytes(proto.SerializeToString())
    requirements = [p for p in (pinned("onnxruntime"), pinned("onnx")) if p]
    return {
        "flavor": "onnx",
        "loader": loader,
        "check": {"rows": len(matrix), "max_abs_diff": diff, "tolerance": tolerance},
        "requirements": requirements,
    }


def _compare(
    original: Predictor,
    exported: OnnxPredictor,
    example: Any,
    matrix: np.ndarray[Any, Any],
    classifier: bool,
    tolerance: float,
) -> float:
    want = np.asarray(original.predict(example))
    got = np.asarray(exported.predict(matrix)).reshape(want.shape)
    if classifier:
        wrong = int(np.sum(want != got))
        if wrong:
            raise CheckFailedError(
                f"the ONNX export predicts a different label for {wrong} of {len(want)} example rows",
                hint="the model was not exported; save without onnx=True",
            )
        if not (original.has_proba and exported.has_proba):
            return 0.0
        want = np.asarray(original.predict_proba(example), dtype=np.float64)
        got = np.asarray(exported.predict_proba(matrix), dtype=np.float64).reshape(want.shape)
    want = want.astype(np.float64)
    got = got.astype(np.float64)
    diff = float(np.max(np.abs(want - got))) if want.size else 0.0
    if not np.allclose(got, want, rtol=tolerance, atol=tolerance):
        raise CheckFailedError(
            f"the ONNX export differs from the model by up to {diff:.3g} on the example "
            f"(tolerance {tolerance:g})",
            hint="the model was not exported; save without onnx=True",
        )
    return diff

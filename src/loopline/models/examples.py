"""Input examples stored next to the model, in a form that loads without pickle.

A DataFrame (or a dict of columns) is stored as Parquet, keeping its dtypes; an
array as ``.npy`` (read with ``allow_pickle=False``); anything else as JSON.

>>> import tempfile, pathlib, numpy as np
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> name = write_example(folder, np.arange(6.0).reshape(2, 3))
>>> name, read_example(folder, name).shape
('input_example.npy', (2, 3))
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopline.errors import InvalidArgumentError
from loopline.models.signature import dict_to_frame

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MAX_ROWS", "as_model_input", "read_example", "write_example"]

MAX_ROWS = 100
"""Longer examples are cut to their first rows: an example documents, it does not train."""


def as_model_input(example: Any) -> Any:
    """A DataFrame or ndarray from an example given as either, a dict, a Series or a list."""
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    if isinstance(example, dict):
        return dict_to_frame(example)
    return np.asarray(example)


def write_example(folder: Path, example: Any) -> str:
    """Store ``example`` (its first :data:`MAX_ROWS` rows) in ``folder``; the file name."""
    data = as_model_input(example)
    if isinstance(data, pd.DataFrame):
        frame = data.head(MAX_ROWS)
        frame.columns = [str(c) for c in frame.columns]
        frame.to_parquet(folder / "input_example.parquet", index=False)
        return "input_example.parquet"
    arr = data[:MAX_ROWS] if data.ndim else data
    if arr.dtype.kind != "O":
        np.save(folder / "input_example.npy", arr, allow_pickle=False)
        return "input_example.npy"
    try:
        text = json.dumps(arr.tolist())
    except TypeError as exc:
        raise InvalidArgumentError(
            f"the input example cannot be stored without pickling: {exc}",
            hint="give a DataFrame, a numeric array or a dict of columns",
        ) from exc
    (folder / "input_example.json").write_text(text)
    return "input_example.json"


def read_example(folder: Path, name: str) -> Any:
    """The example stored as ``name`` in ``folder``."""
    file = folder / name
    if name.endswith(".parquet"):
        return pd.read_parquet(file)
    if name.endswith(".npy"):
        return np.load(file, allow_pickle=False)
    return np.asarray(json.loads(file.read_text()), dtype=object)

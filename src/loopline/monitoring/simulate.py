"""Write prediction and feedback logs in :mod:`loopline.predlog`'s layout from DataFrames.

For tests, demos and back-fills: a table of features (and predictions) becomes a
prediction log file as an inference server would write it.

>>> import pandas as pd, tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> ids = write_predictions(root, "clf", pd.DataFrame({"x": [1.0, 2.0]}), predictions=[0, 1])
>>> from loopline import predlog
>>> predlog.read_log(root, "predictions", "clf").column_names[-2:]
['in.x', 'out.prediction']
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopline import predlog

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pandas as pd
    import pyarrow as pa

__all__ = ["write_feedback", "write_predictions"]


def _write(table: pa.Table, root: Path, kind: predlog.Kind, source: str, when: datetime) -> Path:
    import pyarrow.parquet as pq

    path = predlog.new_file_path(root, kind, source, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_predictions(
    root: Path,
    source: str,
    features: pd.DataFrame,
    *,
    predictions: Sequence[Any] | None = None,
    proba: dict[str, Sequence[float]] | None = None,
    when: datetime | None = None,
    timestamps: Sequence[datetime] | None = None,
    request_ids: Sequence[str] | None = None,
    model: str | None = None,
    version: str = "1",
    variant: str = "primary",
) -> list[str]:
    """One prediction log file of ``features`` (one request per row); returns the request ids.

    ``model`` and ``version`` name the model that answered (default: ``source``, 1).
    """
    import pyarrow as pa

    when = when or datetime.now(UTC)
    n = len(features)
    ids = list(request_ids) if request_ids is not None else [uuid.uuid4().hex for _ in range(n)]
    stamps = list(timestamps) if timestamps is not None else [when] * n
    cols: dict[str, Any] = {
        "request_id": pa.array(ids, pa.string()),
        "timestamp": pa.array(stamps, pa.timestamp("us", "UTC")),
        "source": pa.array([source] * n, pa.string()),
        "model_name": pa.array([model or source] * n, pa.string()),
        "model_version": pa.array([version] * n, pa.string()),
        "variant": pa.array([variant] * n, pa.string()),
        "latency_ms": pa.array([1.0] * n, pa.float64()),
    }
    for name in features.columns:
        cols[f"{predlog.INPUT_PREFIX}{name}"] = pa.Array.from_pandas(features[name])
    if predictions is not None:
        cols[f"{predlog.OUTPUT_PREFIX}prediction"] = pa.array(list(predictions))
    for label, values in (proba or {}).items():
        cols[f"{predlog.PROBA_PREFIX}{label}"] = pa.array(list(values), pa.float64())
    _write(pa.table(cols), root, "predictions", source, when)
    return ids


def write_feedback(
    root: Path,
    source: str,
    request_ids: Sequence[str],
    labels: Sequence[Any],
    *,
    when: datetime | None = None,
) -> Path:
    """One feedback file: the label of each request."""
    import pyarrow as pa

    when = when or datetime.now(UTC)
    table = pa.table({
        "request_id": pa.array(list(request_ids), pa.string()),
        "timestamp": pa.array([when] * len(request_ids), pa.timestamp("us", "UTC")),
        "label": pa.array(list(labels)),
    })  # fmt: skip
    return _write(table, root, "feedback", source, when)

"""Runs as a pandas DataFrame, in MLflow's column layout.

Columns: ``run_id, experiment_id, status, artifact_uri, start_time, end_time,
run_name, user_id, parent_run_id``, then ``metrics.*``, ``params.*``, ``tags.*``.
Built column by column: one pass over the runs, no per-row Series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from loopline.tracking.entities import Run

__all__ = ["rows_to_frame", "runs_to_frame"]

_INFO = (
    "run_id",
    "experiment_id",
    "status",
    "artifact_uri",
    "start_time",
    "end_time",
    "run_name",
    "user_id",
    "parent_run_id",
)


def runs_to_frame(runs: list[Run]) -> pd.DataFrame:
    """A frame of :class:`Run` objects (what any transport returns)."""
    columns: dict[str, Any] = {name: [getattr(r.info, name) for r in runs] for name in _INFO}
    return _finish(
        columns,
        [r.data.metrics for r in runs],
        [r.data.params for r in runs],
        [r.data.tags for r in runs],
    )


def rows_to_frame(
    rows: Sequence[Any],
    metrics: dict[str, dict[str, float]],
    params: dict[str, dict[str, str]],
    tags: dict[str, dict[str, str]],
) -> pd.DataFrame:
    """A frame straight from ``runs`` rows and their values, with no Run objects between.

    The embedded store's search takes this path: it saves an object per run when a
    search returns thousands.
    """
    ids = [row[0] for row in rows]
    columns: dict[str, Any] = {
        "run_id": ids,
        "experiment_id": [str(row[1]) for row in rows],
        "status": [row[3] for row in rows],
        "artifact_uri": [row[9] for row in rows],
        "start_time": [row[4] for row in rows],
        "end_time": [row[5] for row in rows],
        "run_name": [row[2] for row in rows],
        "user_id": [row[6] for row in rows],
        "parent_run_id": [row[8] for row in rows],
    }
    empty: dict[str, Any] = {}
    return _finish(
        columns,
        [metrics.get(i, empty) for i in ids],
        [params.get(i, empty) for i in ids],
        [tags.get(i, empty) for i in ids],
    )


def _finish(
    columns: dict[str, Any],
    metrics: list[dict[str, float]],
    params: list[dict[str, str]],
    tags: list[dict[str, str]],
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    nan = np.nan
    for key in sorted({key for d in metrics for key in d}):
        columns[f"metrics.{key}"] = np.fromiter(
            (d.get(key, nan) for d in metrics), dtype=float, count=len(metrics)
        )
    for section, dicts in (("params", params), ("tags", tags)):
        for key in sorted({key for d in dicts for key in d}):
            columns[f"{section}.{key}"] = [d.get(key) for d in dicts]
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame

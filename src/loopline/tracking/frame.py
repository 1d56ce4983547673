"""Runs as a pandas DataFrame, in MLflow's column layout.

Columns: ``run_id, experiment_id, status, artifact_uri, start_time, end_time,
run_name, user_id, parent_run_id``, then ``metrics.*``, ``params.*``, ``tags.*``.
Built column by column: one pass over the runs, no per-row Series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from loopline.tracking.entities import Run

__all__ = ["runs_to_frame"]

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
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {name: [getattr(r.info, name) for r in runs] for name in _INFO}
    for section in ("metrics", "params", "tags"):
        dicts = [getattr(r.data, section) for r in runs]
        keys = sorted({key for d in dicts for key in d})
        if section == "metrics":
            nan = np.nan
            for key in keys:
                columns[f"metrics.{key}"] = np.fromiter(
                    (d.get(key, nan) for d in dicts), dtype=float, count=len(dicts)
                )
        else:
            for key in keys:
                columns[f"{section}.{key}"] = [d.get(key) for d in dicts]
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame

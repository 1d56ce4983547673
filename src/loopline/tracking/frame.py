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

    n = len(runs)
    columns: dict[str, Any] = {name: [getattr(r.info, name) for r in runs] for name in _INFO}
    for section, fill in (("metrics", np.nan), ("params", None), ("tags", None)):
        keys: dict[str, None] = {}
        for r in runs:
            keys.update(dict.fromkeys(getattr(r.data, section)))
        for key in sorted(keys):
            values = [fill] * n
            for i, r in enumerate(runs):
                value = getattr(r.data, section).get(key, fill)
                values[i] = value
            columns[f"{section}.{key}"] = (
                np.asarray(values, dtype=float) if section == "metrics" else values
            )
    frame = pd.DataFrame(columns)
    for name in ("start_time", "end_time"):
        frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame

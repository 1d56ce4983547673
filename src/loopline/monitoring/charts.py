"""Monitor results in the shapes charts draw: series over runs, distributions of a run.

:func:`series` turns history rows (one per run, column and metric) into one shared
x axis (the runs' times) and one ``ys`` list per (column, metric), ``None`` where a
run did not record it, which is what a line chart takes as it is.
:func:`distributions` takes a run's reference-against-current histograms out of
its report: numeric columns as bin ``edges`` (one more than the shares), categorical
ones as ``categories``, each with the ``ref`` and ``cur`` share per bin.

>>> rows = [
...     {"run_id": 1, "created_at": 10, "column_name": "x", "metric": "ks", "value": 0.1,
...      "p_value": 0.5, "threshold": 0.05, "flagged": False},
...     {"run_id": 2, "created_at": 20, "column_name": "x", "metric": "ks", "value": 0.4,
...      "p_value": 0.01, "threshold": 0.05, "flagged": True},
...     {"run_id": 2, "created_at": 20, "column_name": "y", "metric": "psi", "value": 0.02,
...      "p_value": None, "threshold": 0.1, "flagged": False},
... ]
>>> s = series(rows)
>>> s["xs"], s["run_ids"]
([10, 20], [1, 2])
>>> [(line["label"], line["ys"], line["flagged"]) for line in s["series"]]
[('x', [0.1, 0.4], [False, True]), ('y', [None, 0.02], [None, False])]
"""

from __future__ import annotations

from typing import Any

__all__ = ["distributions", "series"]


def series(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """History rows (oldest first) as a shared x axis and one line per column and metric.

    A line is labelled by its column, or by its metric for table-wide results
    (``*``: model quality, row counts), or by both when a column has several metrics.
    """
    runs: dict[int, int] = {}
    for r in rows:
        runs.setdefault(int(r["run_id"]), int(r["created_at"]))
    order = sorted(runs, key=lambda k: (runs[k], k))
    at = {run_id: i for i, run_id in enumerate(order)}
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r["column_name"]), str(r["metric"]))
        line = lines.get(key)
        if line is None:
            line = lines[key] = {
                "column": key[0], "metric": key[1], "ys": [None] * len(order),
                "p_values": [None] * len(order), "thresholds": [None] * len(order),
                "flagged": [None] * len(order),
            }  # fmt: skip
        i = at[int(r["run_id"])]
        line["ys"][i] = r["value"]
        line["p_values"][i] = r["p_value"]
        line["thresholds"][i] = r["threshold"]
        line["flagged"][i] = bool(r["flagged"])
    per_column: dict[str, int] = {}
    for column, _metric in lines:
        per_column[column] = per_column.get(column, 0) + 1
    out = []
    for (column, metric), line in sorted(lines.items()):
        if column == "*":
            label = metric
        elif per_column[column] > 1:
            label = f"{column} {metric}"
        else:
            label = column
        out.append({"label": label, **line})
    return {"xs": [runs[k] for k in order], "run_ids": order, "series": out}


def distributions(run: dict[str, Any]) -> dict[str, Any]:
    """A run's reference-against-current histograms, one entry per tested column."""
    drift = (run.get("summary") or {}).get("drift") or {}
    columns = []
    for c in drift.get("columns", []):
        dist = c.get("distribution") or {}
        entry: dict[str, Any] = {
            "column": c["column"], "kind": c["kind"], "role": c["role"], "method": c["method"],
            "statistic": c["statistic"], "p_value": c["p_value"], "threshold": c["threshold"],
            "drifted": c["drifted"], "ref": dist.get("ref", []), "cur": dist.get("cur", []),
        }  # fmt: skip
        if "edges" in dist:
            entry["edges"] = dist["edges"]
        if "categories" in dist:
            entry["categories"] = dist["categories"]
        columns.append(entry)
    return {
        "run_id": run.get("id"),
        "rows": run.get("rows"),
        "ref_rows": drift.get("ref_rows"),
        "cur_rows": drift.get("cur_rows"),
        "columns": columns,
    }

"""Rich renderings of one run (``runs show``) and of several (``runs compare``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from loopline.cli._output import (
    format_bytes,
    format_duration,
    format_time,
    format_value,
    sparkline,
    status_style,
    table,
)

if TYPE_CHECKING:
    from rich.console import Console

    from loopline.tracking.entities import Run

__all__ = ["ComparisonRow", "comparison", "render_comparison", "render_run", "runs_table"]

SYSTEM_TAG_PREFIX = "loopline."


def _info_grid(run: Run, experiment_name: str) -> Table:
    info = run.info
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    style = status_style(info.status) or "none"
    rows: list[tuple[str, str]] = [
        ("Run ID", escape(info.run_id)),
        ("Name", escape(info.run_name)),
        ("Experiment", f"{escape(experiment_name)} (id {info.experiment_id})"),
        ("Status", f"[{style}]{info.status}[/{style}]"),
        ("Lifecycle", info.lifecycle_stage),
        ("User", escape(info.user_id)),
        ("Started", format_time(info.start_time)),
        ("Ended", format_time(info.end_time)),
        ("Duration", format_duration(info.start_time, info.end_time)),
        ("Artifacts", escape(info.artifact_uri)),
    ]
    if info.parent_run_id:
        rows.append(("Parent run", escape(info.parent_run_id)))
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def render_run(
    console: Console,
    run: Run,
    experiment_name: str,
    artifacts: list[dict[str, Any]],
    histories: dict[str, list[float]],
) -> None:
    console.print(_info_grid(run, experiment_name))
    data = run.data
    if data.params:
        params = table("Param", "Value", title="Params")
        for key, value in sorted(data.params.items()):
            params.add_row(escape(key), escape(value))
        console.print(params)
    if data.metrics:
        metrics = table("Metric", "Latest", "Steps", "History", title="Metrics")
        for key, latest in sorted(data.metrics.items()):
            history = histories.get(key, [])
            metrics.add_row(
                escape(key),
                format_value(latest),
                str(len(history)) if history else "-",
                sparkline(history) if len(history) > 1 else "",
            )
        console.print(metrics)
    if data.tags:
        tags = table("Tag", "Value", title="Tags")
        user = sorted((k, v) for k, v in data.tags.items() if not k.startswith(SYSTEM_TAG_PREFIX))
        system = sorted((k, v) for k, v in data.tags.items() if k.startswith(SYSTEM_TAG_PREFIX))
        for key, value in user:
            tags.add_row(escape(key), escape(value))
        for key, value in system:
            tags.add_row(escape(key), escape(_shorten(value)), style="dim")
        console.print(tags)
    if artifacts:
        files = table("Artifact", "Size", title="Artifacts")
        for entry in artifacts:
            files.add_row(escape(entry["path"]), format_bytes(entry["size"]))
        console.print(files)
    else:
        console.print("no artifacts", style="dim")


def _shorten(text: str, limit: int = 120) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One param or metric across the compared runs (None where a run lacks it)."""

    section: str
    key: str
    values: list[Any]

    @property
    def differs(self) -> bool:
        first = self.values[0]
        return any(not _same(first, other) for other in self.values[1:])

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": self.values, "differs": self.differs}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def comparison(runs: list[Run]) -> list[ComparisonRow]:
    """Params then metrics, each sorted by key, aligned across ``runs``.

    >>> from loopline.tracking.entities import Run, RunData, RunInfo
    >>> def run(i, **params):
    ...     return Run(RunInfo(str(i), "0", f"r{i}", "FINISHED", 0, 1, "me"), RunData({}, params))
    >>> [(r.key, r.values, r.differs) for r in comparison([run(1, a="1", b="x"), run(2, a="2")])]
    [('a', ['1', '2'], True), ('b', ['x', None], True)]
    """
    rows: list[ComparisonRow] = []
    for section in ("params", "metrics"):
        keys: set[str] = set()
        for run in runs:
            keys.update(getattr(run.data, section))
        for key in sorted(keys):
            values = [getattr(run.data, section).get(key) for run in runs]
            rows.append(ComparisonRow(section, key, values))
    return rows


def render_comparison(
    console: Console, runs: list[Run], rows: list[ComparisonRow], *, diff_only: bool
) -> None:
    out = Table(header_style="bold", title="Runs compared", title_justify="left")
    out.add_column("", no_wrap=True)
    for run in runs:
        out.add_column(f"{escape(run.info.run_name)}\n[dim]{run.info.run_id[:12]}[/dim]")
    out.add_row(
        "status",
        *(f"[{status_style(r.info.status) or 'none'}]{r.info.status}[/]" for r in runs),
    )
    shown = 0
    for section in ("params", "metrics"):
        section_rows = [r for r in rows if r.section == section and (r.differs or not diff_only)]
        if not section_rows:
            continue
        out.add_section()
        out.add_row(f"[bold]{section}[/bold]", *([""] * len(runs)))
        for row in section_rows:
            shown += 1
            cells = [escape(format_value(v)) for v in row.values]
            if row.differs:
                out.add_row(f"[bold yellow]{escape(row.key)}[/]", *cells, style="yellow")
            else:
                out.add_row(escape(row.key), *cells, style="dim")
    console.print(out)
    differing = sum(1 for r in rows if r.differs)
    console.print(
        f"{differing} of {len(rows)} params and metrics differ (highlighted)"
        + ("" if shown or not diff_only else "; nothing differs"),
        style="dim",
        markup=False,
    )


# -- runs list ---------------------------------------------------------------------
_MAX_METRIC_COLUMNS = 6


@dataclass(slots=True)
class _Column:
    header: str
    cells: list[str]
    plain: list[str]
    no_wrap: bool = True
    justify: str = "left"

    @property
    def width(self) -> int:
        # Cell content plus rich's padding (1 each side) and one border.
        return max([len(self.header), *(len(p) for p in self.plain)]) + 3


def _column(header: str, cells: list[str], plain: list[str] | None = None, **kw: Any) -> _Column:
    return _Column(header, cells, plain if plain is not None else cells, **kw)


def runs_table(
    runs: list[Run], experiment_names: dict[str, str], metric_keys: list[str], *, width: int
) -> Table:
    """The ``runs list`` table, with as many columns as ``width`` holds.

    The run id, name and status always show (ids are what other commands take); then
    the first two metrics, the duration, the start time, more metrics, and the
    experiment when the runs span several.
    """
    infos = [r.info for r in runs]
    statuses = [i.status + (" (deleted)" if i.lifecycle_stage != "active" else "") for i in infos]
    styled = [
        f"[{status_style(i.status) or 'none'}]{i.status}[/]"
        + (" [red](deleted)[/red]" if i.lifecycle_stage != "active" else "")
        for i in infos
    ]
    names = [i.run_name for i in infos]
    name_col = _column("Name", [escape(n) for n in names], names, no_wrap=False)
    columns: dict[str, _Column] = {
        "id": _column("Run ID", [i.run_id for i in infos]),
        "name": name_col,
        "status": _column("Status", styled, statuses),
    }
    metric_cols = {
        key: _column(
            escape(key),
            [format_value(r.data.metrics.get(key)) for r in runs],
            plain=[format_value(r.data.metrics.get(key)) for r in runs],
            justify="right",
        )
        for key in metric_keys[:_MAX_METRIC_COLUMNS]
    }
    optional: list[tuple[str, _Column]] = [(k, c) for k, c in list(metric_cols.items())[:2]]
    optional.append(
        (
            "duration",
            _column("Duration", [format_duration(i.start_time, i.end_time) for i in infos]),
        )
    )
    optional.append(("started", _column("Started", [format_time(i.start_time) for i in infos])))
    optional.extend(list(metric_cols.items())[2:])
    exp_ids = {i.experiment_id for i in infos}
    if len(exp_ids) > 1:
        exps = [experiment_names.get(i.experiment_id, i.experiment_id) for i in infos]
        optional.append(("experiment", _column("Experiment", [escape(e) for e in exps], exps)))
    # Names may wrap, so they count for at most 24 characters when fitting.
    used = 1 + sum(c.width for c in columns.values()) - max(0, name_col.width - 27)
    for key, col in optional:
        if used + col.width <= width:
            columns[key] = col
            used += col.width
    order = ["id", "name", "experiment", "status", "started", "duration", *metric_cols]
    out = Table(header_style="bold")
    for key in order:
        if key in columns:
            col = columns[key]
            out.add_column(col.header, no_wrap=col.no_wrap, justify=col.justify)  # type: ignore[arg-type]
    for row in range(len(runs)):
        out.add_row(*(columns[k].cells[row] for k in order if k in columns))
    return out

"""``loopline ci report``: how a pipeline run compares with the current champion.

A report gathers, from the metadata store: the run's gate verdicts and scores, the
champion's scores on its own gate (deltas), the dataset versions both were judged
on and how they differ, parameter changes, and plots (scores side by side, a
confusion matrix or residuals, metric curves) written as PNG files beside it.

>>> _metric_of({"check": "auc on cancer@2", "value": 0.97})
'auc'
>>> _metric_of({"check": "auc vs champion models:/x@champion (0.95)", "value": 0.01}) is None
True
>>> _delta(0.97, 0.95)
'+0.02'
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import LooplineError, NotFoundError

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.config import Settings
    from loopline.pipelines.store import RunRecord

__all__ = ["CiReport", "Format", "build_report", "render", "write_report"]

Format = Literal["markdown", "html", "json"]
_GATE_STEPS = ("validate_model", "validate_data")
_VERDICTS = {
    "succeeded": "passed",
    "cached": "passed",
    "gate_failed": "failed",
    "waiting_approval": "blocked",
}


@dataclass(slots=True)
class CiReport:
    """Everything a report shows; ``to_dict`` is the JSON format."""

    run_id: str
    pipeline: str
    status: str
    verdict: str
    """``passed``, ``failed`` (a gate), ``blocked`` (waits for an approval) or ``error``."""
    against: str
    model: str | None
    registered: str | None = None
    champion: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)
    params: list[dict[str, Any]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    step_runs: dict[str, str] = field(default_factory=dict)
    """Each step's tracked child run."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_report(
    settings: Settings, run_id: str | None = None, *, against: str = "champion"
) -> CiReport:
    """The report of pipeline run ``run_id`` (default: the latest) against alias ``against``."""
    from loopline.pipelines.store import PipelineStore
    from loopline.store.metadata import Database

    if settings.remote:
        from loopline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            "reports read pipeline runs from the metadata database, not through a server",
            hint="set LOOPLINE_TRACKING_URI to the team's database URL in the CI job",
        )
    if not settings.tracking_uri and not (settings.home / "loopline.db").exists():
        raise NotFoundError(
            f"no loopline store at {settings.home}",
            hint="run the pipeline first (`loopline pipeline run pipeline.py`), or point "
            "LOOPLINE_TRACKING_URI at the team's metadata database",
        )
    db = Database(settings.metadata_url)
    try:
        store = PipelineStore(db)
        if run_id is None:
            runs = store.list_runs(limit=1)
            if not runs:
                raise NotFoundError(
                    "there is no pipeline run to report on",
                    hint="run one first: `loopline pipeline run pipeline.py --config loopline.toml`",
                )
            run_id = runs[0].id
        record = store.get_run(run_id)
        report = CiReport(
            run_id=record.id,
            pipeline=record.pipeline,
            status=record.status,
            verdict=_VERDICTS.get(record.status, "error"),
            against=against,
            model=None,
            error=record.error,
            step_runs={s.name: s.child_run_id for s in record.steps if s.child_run_id},
        )
        gate_outcome = _gates(settings, record, report)
        report.model = _model_name(record, gate_outcome)
        _champion(store, record, report)
        return report
    finally:
        db.close()


def _gates(settings: Settings, record: RunRecord, report: CiReport) -> dict[str, Any]:
    """Fill the gate rows and scores; returns the passed model gate's outcome, if any."""
    found: dict[str, Any] = {}
    for step in record.steps:
        if not step.name.startswith(_GATE_STEPS):
            continue
        rows, outcome = _gate_rows(settings, step, report)
        report.gates.extend({"step": step.name, **row} for row in rows)
        if step.name.startswith("validate_model"):
            if isinstance(outcome, dict):
                found = outcome
                report.registered = outcome.get("registered")
                report.datasets["run"] = outcome.get("dataset")
            _model_gate(record, step.name, rows, report)
    if isinstance(found.get("scores"), dict):
        known = {m["name"] for m in report.metrics}
        report.metrics.extend(
            {"name": k, "run": v} for k, v in sorted(found["scores"].items()) if k not in known
        )
    return found


def _gate_rows(settings: Settings, step: Any, report: CiReport) -> tuple[list[Any], Any]:
    """A gate step's report rows and, for a gate that passed, its whole outcome."""
    from loopline.pipelines.materializers import load_value
    from loopline.pipelines.worker import blob_store

    if "report" in step.outputs:  # a failed or blocked gate keeps its report
        return list(step.outputs["report"]), None
    if "output" in step.outputs:
        outcome = load_value(blob_store(settings), step.outputs["output"])
        rows = outcome.get("report", []) if isinstance(outcome, dict) else []
        return list(rows), outcome
    if step.error:
        report.notes.append(f"{step.name}: {step.error}")
    return [{"check": step.name, "value": None, "expected": "", "passed": False}], None


def _model_gate(record: RunRecord, name: str, rows: list[Any], report: CiReport) -> None:
    for row in rows:
        metric = _metric_of(row)
        if metric is not None:
            report.metrics.append({"name": metric, "run": row.get("value")})
            if not report.datasets.get("run"):
                report.datasets["run"] = str(row["check"]).split(" on ", 1)[1]
    if not report.datasets.get("run"):
        ref = _dataset_arg(record, name)
        if ref:
            report.datasets["run"] = ref


def _metric_of(row: dict[str, Any]) -> str | None:
    check = str(row.get("check", ""))
    head, sep, _rest = check.partition(" on ")
    if not sep or " " in head or "slice" in check:
        return None
    return head


def _dataset_arg(record: RunRecord, node_name: str) -> str | None:
    for node in record.dag.get("nodes", []):
        if node.get("name") == node_name:
            arg = node.get("args", {}).get("dataset", {})
            if arg.get("kind") in ("dataset", "const"):
                return str(arg.get("value"))
    step = next((s for s in record.steps if s.name == node_name), None)
    datasets = step.inputs.get("datasets", {}) if step else {}
    return next(iter(datasets.values()), None) if datasets else None


def _model_name(record: RunRecord, outcome: dict[str, Any]) -> str | None:
    registered = outcome.get("registered")
    if registered:
        return str(registered).split("@", 1)[0]
    for node in record.dag.get("nodes", []):
        arg = node.get("args", {}).get("register_as")
        if arg and arg.get("kind") == "const" and arg.get("value"):
            return str(arg["value"])
    name = record.params.get("model_name")
    return str(name) if name else None


def _champion(store: Any, record: RunRecord, report: CiReport) -> None:
    import loopline.registry
    from loopline.tracking.fluent import get_client

    if report.model is None:
        report.notes.append("this run registers no model: nothing to compare with a champion")
        return
    try:
        version = loopline.registry.resolve(f"{report.model}@{report.against}")
    except NotFoundError:
        report.notes.append(
            f"{report.model} has no {report.against} yet: this report shows the run alone"
        )
        return
    if report.registered == version.ref:
        # This run moved the alias: what it beat is the version the alias left.
        previous = _previous_holder(report.model, report.against, version.version)
        if previous is None:
            report.notes.append(
                f"this run's model became the first {report.against} ({version.ref})"
            )
            return
        report.notes.append(
            f"this run's model became the {report.against} ({version.ref}); "
            f"compared with the one it replaced ({report.model}@{previous})"
        )
        version = loopline.registry.resolve(f"{report.model}@{previous}")
    report.champion = {"version": version.ref, "run_id": version.run_id}
    client = get_client()  # the process's client, as loopline.registry uses
    metrics: dict[str, float] = {}
    parent: str | None = None
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
            metrics = {k[5:]: v for k, v in run.data.metrics.items() if k.startswith("gate.")}
            parent = run.data.tags.get("mlflow.parentRunId")
        except LooplineError:
            report.notes.append(f"the {report.against}'s run {version.run_id} cannot be read")
    for row in report.metrics:
        theirs = metrics.get(row["name"])
        row["champion"] = theirs
        row["delta"] = _delta(row.get("run"), theirs)
    champion_data = version.tags.get("loopline.gate.dataset")
    report.datasets["champion"] = champion_data
    ours = report.datasets.get("run")
    if ours and champion_data and ours != champion_data:
        report.datasets["diff"] = _dataset_diff(champion_data, ours)
    if parent:
        try:
            theirs_params = store.get_run(parent, steps=False).params
        except LooplineError:
            theirs_params = {}
        keys = sorted(set(record.params) | set(theirs_params))
        report.params = [
            {"name": k, "run": record.params.get(k), "champion": theirs_params.get(k)}
            for k in keys
            if record.params.get(k) != theirs_params.get(k)
        ]


def _previous_holder(model: str, alias: str, version: int) -> int | None:
    import loopline.registry

    for change in reversed(loopline.registry.alias_history(model, alias)):
        if change.to_version == version:
            return change.from_version
    return None


def _delta(ours: Any, theirs: Any) -> str | None:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float):
        return None
    return f"{ours - theirs:+.4g}"


def _dataset_diff(a: str, b: str) -> dict[str, Any]:
    import loopline.data

    try:
        diff = loopline.data.diff(a, b)
    except LooplineError as exc:
        return {"error": exc.message}
    return {
        "from": a,
        "to": b,
        "added": [c.path for c in diff.added],
        "removed": [c.path for c in diff.removed],
        "modified": [c.path for c in diff.changes if c.change == "modified"],
        "tables": [
            {
                "path": t.path,
                "rows": [t.old_rows, t.new_rows],
                "added_columns": t.added_columns,
                "removed_columns": t.removed_columns,
            }
            for t in diff.tables
        ],
    }


# -- output ----------------------------------------------------------------------------


def write_report(settings: Settings, report: CiReport, out: Path, fmt: Format) -> Path:
    """Write the report (and its PNG plots) into folder ``out``; returns the report file."""
    out.mkdir(parents=True, exist_ok=True)
    report.plots = _plots(settings, report, out)
    name = {"markdown": "report.md", "html": "report.html", "json": "report.json"}[fmt]
    target = out / name
    tmp = target.with_name(f".{name}.tmp")
    tmp.write_text(render(report, fmt), encoding="utf-8")
    tmp.replace(target)
    return target


def render(report: CiReport, fmt: Format) -> str:
    """The report as Markdown, HTML or JSON text."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return _markdown(report)
    return _html(report)


_ICON = {"passed": "✅", "failed": "❌", "blocked": "⏸️", "error": "💥"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _markdown(r: CiReport) -> str:
    lines = [
        f"## {_ICON.get(r.verdict, '')} loopline: {r.pipeline} {r.verdict}",
        "",
        f"Run `{r.run_id}` ({r.status})"
        + (f", registered **{r.registered}**" if r.registered else "")
        + (f"; compared with {r.against} **{r.champion['version']}**" if r.champion else ""),
        "",
    ]
    if r.metrics:
        lines += ["| metric | this run | " + r.against + " | delta |", "|---|---|---|---|"]
        lines += [
            f"| {m['name']} | {_fmt(m.get('run'))} | {_fmt(m.get('champion'))} | {_fmt(m.get('delta'))} |"
            for m in r.metrics
        ]
        lines.append("")
    if r.gates:
        lines += ["### Gates", "", "| check | value | expected | verdict |", "|---|---|---|---|"]
        lines += [
            f"| {g.get('check')} | {_fmt(g.get('value'))} | {_fmt(g.get('expected'))} | "
            f"{'pass' if g.get('passed') else '**FAIL**'} |"
            for g in r.gates
        ]
        lines.append("")
    if r.datasets:
        lines += ["### Data", ""]
        lines.append(f"- this run: `{r.datasets.get('run') or '—'}`")
        if r.champion:
            lines.append(f"- {r.against}: `{r.datasets.get('champion') or '—'}`")
        diff = r.datasets.get("diff")
        if diff and "error" not in diff:
            lines.append(
                f"- changed files: {len(diff['added'])} added, {len(diff['removed'])} removed, "
                f"{len(diff['modified'])} modified"
            )
            for t in diff["tables"]:
                lines.append(
                    f"  - `{t['path']}`: rows {_fmt(t['rows'][0])} → {_fmt(t['rows'][1])}"
                    + (f", new columns {t['added_columns']}" if t["added_columns"] else "")
                    + (f", dropped columns {t['removed_columns']}" if t["removed_columns"] else "")
                )
        lines.append("")
    if r.params:
        lines += [
            "### Parameter changes",
            "",
            f"| param | this run | {r.against} |",
            "|---|---|---|",
        ]
        lines += [f"| {p['name']} | {_fmt(p['run'])} | {_fmt(p['champion'])} |" for p in r.params]
        lines.append("")
    if r.plots:
        lines += ["### Plots", ""] + [f"![{p}]({p})" for p in r.plots] + [""]
    if r.error:
        lines += ["### Error", "", "```", r.error, "```", ""]
    if r.notes:
        lines += [f"> {n}" for n in r.notes] + [""]
    return "\n".join(lines)


def _html(r: CiReport) -> str:
    """The Markdown report as a standalone page: one text, so both say the same.

    Raw HTML in the Markdown (a metric or dataset name, an error message) is
    escaped, not rendered (``html: False``).
    """
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(_markdown(r))
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>loopline report {html.escape(r.run_id)}"
        f"</title><style>{style}</style></head><body>{body}</body></html>\n"
    )


# -- plots -----------------------------------------------------------------------------


def _plots(settings: Settings, report: CiReport, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.notes.append("plots need matplotlib: pip install matplotlib")
        return []
    written: list[str] = []
    scored = [m for m in report.metrics if isinstance(m.get("run"), int | float)]
    if scored:
        fig, ax = plt.subplots(figsize=(6, 3))
        names = [m["name"] for m in scored]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [m["run"] for m in scored], 0.4, label="this run")
        theirs = [m.get("champion") for m in scored]
        if any(isinstance(t, int | float) for t in theirs):
            ax.bar([x + 0.2 for x in xs], [t or 0 for t in theirs], 0.4, label=report.against)
        ax.set_xticks(list(xs), names)
        ax.legend()
        ax.set_title("gate metrics")
        written.append(_save(fig, out, "metrics.png"))
    evaluation = _evaluation_plot(report, plt)
    if evaluation is not None:
        written.append(_save(evaluation, out, "evaluation.png"))
    curves = _curves_plot(report, plt)
    if curves is not None:
        written.append(_save(curves, out, "curves.png"))
    return written


def _save(fig: Any, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _evaluation_plot(report: CiReport, plt: Any) -> Any:
    """A confusion matrix (classifier) or residuals (regressor) of the registered model."""
    if not report.registered or not report.datasets.get("run"):
        return None
    import numpy as np

    import loopline.data
    import loopline.models

    try:
        model = loopline.models.load(f"models:/{report.registered.replace('@', '/')}")
        frame = loopline.data.get(str(report.datasets["run"])).to_pandas()
    except LooplineError as exc:
        report.notes.append(f"no evaluation plot: {exc.message}")
        return None
    target = next((c for c in ("target", "label", "y") if c in frame.columns), None)
    if target is None:
        return None
    truth = frame[target].to_numpy()
    predicted = np.asarray(model.predict(frame.drop(columns=target)))
    fig, ax = plt.subplots(figsize=(4, 4))
    labels = np.unique(truth)
    if (len(labels) <= 20 and np.issubdtype(truth.dtype, np.integer)) or truth.dtype == object:
        matrix = np.array(
            [[np.sum((truth == a) & (predicted == b)) for b in labels] for a in labels]
        )
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center")
        ax.set_xticks(range(len(labels)), [str(v) for v in labels])
        ax.set_yticks(range(len(labels)), [str(v) for v in labels])
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(f"confusion matrix on {report.datasets['run']}")
    else:
        ax.scatter(predicted, truth - predicted, s=6)
        ax.axhline(0, color="grey")
        ax.set_xlabel("predicted")
        ax.set_ylabel("residual")
        ax.set_title(f"residuals on {report.datasets['run']}")
    return fig


def _curves_plot(report: CiReport, plt: Any) -> Any:
    """Metric series of more than one point logged by the run's steps."""
    from loopline.tracking.fluent import get_client

    client = get_client()  # the process's client, as loopline.registry uses
    series: dict[str, list[tuple[int, float]]] = {}
    for step, run_id in report.step_runs.items():
        try:
            keys = list(client.get_run(run_id).data.metrics)
            for key in keys:
                history = client.get_metric_history(run_id, key)
                if len(history) > 1:
                    series[f"{step}:{key}"] = [(m.step, m.value) for m in history]
        except LooplineError:
            continue
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    for label, points in sorted(series.items())[:10]:
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set_xlabel("step")
    ax.legend(fontsize="small")
    ax.set_title("metric curves")
    return fig

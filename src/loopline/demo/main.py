"""The demo as steps: load data, train and track the candidates, compare, point further.

Each step is a function, so later capabilities insert theirs (version the data,
register the best model, serve it, monitor it) between these.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import loopline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from loopline.demo.data import DemoData
    from loopline.tracking.entities import Run

__all__ = [
    "EXPERIMENT",
    "Timeline",
    "compare",
    "load_data",
    "main",
    "print_comparison",
    "print_next_steps",
    "register_best",
    "train_candidates",
    "version_data",
]

EXPERIMENT = "demo"
MODEL_NAME = "breast-cancer-clf"
SERVER_URL = "http://127.0.0.1:5000"


class Timeline:
    """Prints each step as it finishes, with how long it took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        began = time.perf_counter()
        notes: list[str] = []
        with self.console.status(title):
            yield notes.append
        detail = f": {notes[-1]}" if notes else ""
        self.console.print(
            f"[green]✓[/green] {escape(title + detail)} [dim]({time.perf_counter() - began:.1f}s)[/dim]"
        )

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# -- steps -------------------------------------------------------------------------
def load_data() -> DemoData:
    from loopline.demo.data import load

    return load()


def version_data(data: DemoData) -> tuple[DemoData, str]:
    """Version the dataset in loopline's data store; returns the split and a summary."""
    import dataclasses

    from loopline.demo.data import DATASET_NAME, write_table

    folder = loopline.get_client().settings.home / "demo-data" / DATASET_NAME
    write_table(folder)
    version = loopline.data.add(folder, DATASET_NAME, message="breast cancer, from scikit-learn")
    state = "unchanged" if version.unchanged else "new version"
    return dataclasses.replace(data, version=str(version.ref)), f"{version.ref} ({state})"


def register_best(runs: list[Run]) -> str:
    """Register the best run's model and point the ``champion`` alias at it."""
    best = runs[0]
    version = loopline.registry.register_model(f"runs:/{best.info.run_id}/model", MODEL_NAME)
    loopline.registry.set_alias(MODEL_NAME, "champion", version.version)
    return f"{MODEL_NAME}@{version.version}"


def train_candidates(data: DemoData, timeline: Timeline, *, session: str) -> list[str]:
    """Train every candidate as a run of the ``demo`` experiment; returns the run ids."""
    from loopline.demo.models import candidates, train_and_track

    loopline.set_experiment(EXPERIMENT)
    run_ids = []
    for candidate in candidates():
        with timeline.step(f"train {candidate.name} ({candidate.family})"):
            run_ids.append(train_and_track(candidate, data, session=session))
    loopline.flush()
    return run_ids


def compare(session: str) -> list[Run]:
    """This session's runs from the store, best AUC first."""
    runs = loopline.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.demo_session = '{session}'",
        order_by=["metrics.auc DESC", "metrics.log_loss ASC"],
        output_format="list",
    )
    assert isinstance(runs, list)
    return runs


def print_comparison(console: Console, runs: list[Run]) -> None:
    out = Table(
        title=f"Experiment {EXPERIMENT!r}: {len(runs)} models on the breast cancer test set",
        title_justify="left",
        header_style="bold",
    )
    for name, justify in (
        ("#", "right"),
        ("Run", "left"),
        ("AUC", "right"),
        ("Accuracy", "right"),
        ("F1", "right"),
        ("Log loss", "right"),
        ("Fit", "right"),
    ):
        out.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for rank, run in enumerate(runs, start=1):
        m = run.data.metrics
        out.add_row(
            str(rank),
            escape(run.info.run_name),
            f"{m.get('auc', float('nan')):.4f}",
            f"{m.get('accuracy', float('nan')):.4f}",
            f"{m.get('f1', float('nan')):.4f}",
            f"{m.get('log_loss', float('nan')):.4f}",
            f"{m.get('fit_seconds', float('nan')):.2f}s",
            style="bold green" if rank == 1 else None,
        )
    console.print()
    console.print(out)


def _cli() -> str:
    """How to call ``loopline`` from here: plain when on PATH, else the venv's script."""
    script = Path(sys.prefix) / "bin" / "loopline"
    found = shutil.which("loopline")
    if found and Path(found).resolve() == script.resolve():
        return "loopline"
    if script.exists():
        with contextlib.suppress(ValueError):
            return str(script.relative_to(Path.cwd()))
        return str(script)
    return "loopline"


def print_next_steps(console: Console, runs: list[Run]) -> None:
    cli = _cli()
    env = ""
    home = os.environ.get("LOOPLINE_HOME")
    if home and Path(home).resolve() != (Path.cwd() / ".loopline").resolve():
        env = f"LOOPLINE_HOME={home} "
    lines = [f"{env}{cli} runs list --experiment {EXPERIMENT}"]
    if runs:
        lines.append(f"{env}{cli} runs show {runs[0].info.run_id}")
    if len(runs) >= 2:
        lines.append(f"{env}{cli} runs compare {runs[0].info.run_id} {runs[1].info.run_id}")
    lines.append(f"{env}{cli} data versions breast-cancer")
    lines.append(f"{env}{cli} models lineage {MODEL_NAME}@champion")
    lines.append(f"{env}{cli} server        # then open {SERVER_URL}")
    console.print()
    console.print("[bold]Look further:[/bold]")
    for line in lines:
        console.print(f"  {escape(line)}", soft_wrap=True)


def main() -> None:
    """Run the demo end to end."""
    console = Console(highlight=False)
    settings = loopline.get_client().settings
    where = settings.tracking_uri or str(settings.home)
    console.print(f"[bold]loopline demo[/bold]: tracking into {escape(where)}")
    timeline = Timeline(console)
    session = uuid.uuid4().hex[:12]
    with timeline.step("load the breast cancer dataset (bundled with scikit-learn)"):
        data = load_data()
    with timeline.step("version it in the data store") as note:
        data, summary = version_data(data)
        note(summary)
    train_candidates(data, timeline, session=session)
    runs = compare(session)
    print_comparison(console, runs)
    if runs:
        with timeline.step("register the best model as champion") as note:
            note(register_best(runs))
    print_next_steps(console, runs)
    console.print(f"\n[dim]done in {timeline.elapsed:.1f}s[/dim]")

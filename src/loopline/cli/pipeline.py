"""``loopline pipeline``: Pipelines: run, resume, inspect and schedule DAGs of cached Python steps."""

from __future__ import annotations

import typer

from loopline.cli._errors import LooplineGroup

__all__ = ["app", "scheduler"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Pipelines: run, resume, inspect and schedule DAGs of cached Python steps.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def scheduler(ctx: typer.Context) -> None:
    """Run the scheduler: fire cron, new-data and alert triggers (one active at a time)."""
    raise typer.Exit(2)

"""``loopline deploy``: Deployments: canary and shadow rollouts, promotion and rollback."""

from __future__ import annotations

import typer

from loopline.cli._errors import LooplineGroup

__all__ = ["app"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Deployments: canary and shadow rollouts, promotion and rollback.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

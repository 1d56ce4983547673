"""``loopline monitor``: Monitoring: drift, data quality and model quality; monitors, alerts and reports."""

from __future__ import annotations

import typer

from loopline.cli._errors import LooplineGroup

__all__ = ["app"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Monitoring: drift, data quality and model quality; monitors, alerts and reports.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

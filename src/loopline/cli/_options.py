"""Options several commands share, declared once."""

from enum import StrEnum
from typing import Annotated

import typer

__all__ = ["JsonOption", "View", "ViewOption"]


class View(StrEnum):
    """Which lifecycle stage a listing shows."""

    active = "active"
    deleted = "deleted"
    all = "all"


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable keys) instead of a table.")
]
ViewOption = Annotated[View, typer.Option("--view", help="Show active, deleted or all.")]

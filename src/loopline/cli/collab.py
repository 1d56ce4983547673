"""``loopline users``, ``tokens``, ``projects`` and ``audit``: who may do what, and the record."""

from __future__ import annotations

import typer

from loopline.cli._errors import LooplineGroup

__all__ = ["audit_app", "projects_app", "tokens_app", "users_app"]


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=LooplineGroup, help=help_text, no_args_is_help=True, rich_markup_mode="rich"
    )


users_app = _group("Users of a shared server: create, list, disable.")
tokens_app = _group("Personal API tokens: create (shown once), list, revoke.")
projects_app = _group("Projects and their members' roles (viewer, editor, maintainer, admin).")
audit_app = _group("The audit log: every change, who made it, when and from where.")

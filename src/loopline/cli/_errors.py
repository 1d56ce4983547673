"""Exit codes, and the one place where errors become messages and exit codes.

A :class:`~loopline.errors.LooplineError` prints ``error: <message>`` and
``hint: <hint>`` on stderr, never a traceback. Anything else is a bug, and keeps
its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from loopline.errors import CheckFailedError, LooplineError

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_CODES_EPILOG",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "LooplineGroup",
    "exit_code_for",
    "report_error",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3

EXIT_CODES_EPILOG = (
    "Exit codes: 0 success, 1 error, 2 usage error, 3 a validation gate or check failed."
)


def exit_code_for(error: LooplineError) -> int:
    """The exit code of an error.

    >>> exit_code_for(CheckFailedError("auc below 0.9"))
    3
    >>> exit_code_for(LooplineError("boom"))
    1
    """
    return EXIT_CHECK_FAILED if isinstance(error, CheckFailedError) else EXIT_ERROR


def report_error(error: LooplineError) -> None:
    """Print an error and its hint on stderr (red and dim where colour is on)."""
    from loopline.cli._output import stderr

    console = stderr()
    console.print(f"error: {error.message}", style="bold red", markup=False, highlight=False)
    if error.hint:
        console.print(f"hint: {error.hint}", style="dim", markup=False, highlight=False)


class LooplineGroup(TyperGroup):
    """The root command group: turns loopline's errors into exit codes.

    Subcommands run inside the root group's ``invoke``, so catching here covers
    every command.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LooplineError as exc:
            report_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None

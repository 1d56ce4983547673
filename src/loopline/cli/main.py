"""The ``loopline`` command: the root app, global options and ``main()``.

Importing this module imports typer and rich only (a test checks it): every command
imports what it needs when it runs, so ``loopline --help`` answers at once.
"""

import sys
from typing import Annotated

import typer

from loopline._version import __version__
from loopline.cli import (
    ci,
    collab,
    data,
    db,
    deploy,
    experiments,
    gc,
    models,
    monitor,
    pipeline,
    runs,
    serve,
    server,
)
from loopline.cli._context import State
from loopline.cli._errors import EXIT_CODES_EPILOG, LooplineGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="loopline",
    cls=LooplineGroup,
    help="loopline: experiment tracking and the rest of the MLOps loop, in one package.",
    epilog=EXIT_CODES_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"loopline {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="LOOPLINE_TRACKING_URI",
            metavar="URI",
            help="A server (http://host:port) or a database URL; default: LOOPLINE_HOME.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    ctx.obj = State(tracking_uri=tracking_uri)


app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(ci.app, name="ci")
app.add_typer(collab.users_app, name="users")
app.add_typer(collab.tokens_app, name="tokens")
app.add_typer(collab.projects_app, name="projects")
app.add_typer(collab.audit_app, name="audit")
app.command("gc")(gc.gc)
app.command("server")(server.server)
app.command("scheduler")(pipeline.scheduler)
app.command("serve")(serve.serve)
app.command("predict")(serve.predict)


def main() -> None:
    """The console script's entry point."""
    # `data add` and `data status` answer in a fraction of a second on large trees:
    # their plain forms skip typer's argument parsing (which imports pydantic).
    if sys.argv[1:2] == ["data"]:
        code = data.fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    app(prog_name="loopline")


if __name__ == "__main__":  # pragma: no cover
    main()

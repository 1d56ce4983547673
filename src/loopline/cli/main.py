"""The ``loopline`` command: the root app, global options and ``main()``.

Importing this module imports only the standard library. ``main()`` first hands
``loopline data add|status`` to a fast path that never imports typer (re-adding an
unchanged tree of 20,000 files has 0.3 s, a third of which typer's import would
take), and ``loopline pipeline run`` to another (a cached re-run has 1.5 s, and
building the typer app costs more CPU than the run); everything else runs the typer app, built on first use of ``app`` by
:func:`build_app`. Building it imports typer and rich only (a test checks it):
every command imports what it needs when it runs, so ``loopline --help`` answers
at once.
"""

import functools
import sys
from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    import typer

    app: typer.Typer

__all__ = ["app", "build_app", "main"]


@functools.cache
def build_app() -> "typer.Typer":
    """The root app with every command group registered (built once per process)."""
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
    app.command("init")(ci.init)
    app.command("gc")(gc.gc)
    app.command("server")(server.server)
    app.command("scheduler")(pipeline.scheduler)
    app.command("serve")(serve.serve)
    app.command("predict")(serve.predict)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use, so that importing this module stays cheap
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The console script's entry point."""
    if sys.argv[1:2] == ["data"]:
        from loopline.data._cli import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    elif sys.argv[1:3] == ["pipeline", "run"]:
        from loopline.pipelines._cli import fast_main as pipeline_main

        code = pipeline_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    build_app()(prog_name="loopline")


if __name__ == "__main__":  # pragma: no cover
    main()

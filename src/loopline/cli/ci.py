"""``loopline ci``: reports and pull-request comments for CI jobs.

Exit codes are part of the interface: 0 passed, 3 a gate failed (the model is
worse), 1 an error (the job broke), 2 a usage error.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli._errors import LooplineGroup

__all__ = ["DEFAULT_REPORT_DIR", "app", "init"]

DEFAULT_REPORT_DIR = Path("loopline-report")


class ProviderName(StrEnum):
    github = "github"
    gitlab = "gitlab"


app = typer.Typer(
    cls=LooplineGroup,
    help="CI for models: compare a run with the champion, comment on pull requests.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class ReportFormat(StrEnum):
    markdown = "markdown"
    html = "html"
    json = "json"


@app.command("report")
def report(
    ctx: typer.Context,
    run: Annotated[
        str | None,
        typer.Argument(metavar="[RUN]", help="A pipeline run id (default: the latest)."),
    ] = None,
    against: Annotated[
        str, typer.Option("--against", metavar="ALIAS", help="The alias to compare with.")
    ] = "champion",
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="markdown, html or json.")
    ] = ReportFormat.markdown,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Folder for the report and its plots."),
    ] = DEFAULT_REPORT_DIR,
) -> None:
    """Compare a pipeline run with the champion: metrics, gates, data, params, plots.

    Exits 0 when the run passed its gates, 3 when a gate failed or an approval is
    pending, 1 when the run broke or the report could not be made.
    """
    from loopline.ci.report import build_report, write_report
    from loopline.cli._context import settings_for
    from loopline.cli._errors import EXIT_CHECK_FAILED, EXIT_ERROR
    from loopline.cli._output import stdout

    settings = settings_for(ctx)
    result = build_report(settings, run, against=against)
    path = write_report(settings, result, out, fmt.value)
    stdout().print(f"{result.verdict}: run {result.run_id}, report in {path}", highlight=False)
    if result.verdict in ("failed", "blocked"):
        raise typer.Exit(EXIT_CHECK_FAILED)
    if result.verdict == "error":
        raise typer.Exit(EXIT_ERROR)


@app.command("comment")
def comment(
    provider: Annotated[
        ProviderName, typer.Option("--provider", help="Where the repository lives.")
    ],
    repo: Annotated[
        str,
        typer.Option("--repo", metavar="OWNER/NAME", help="The repository (GitLab: project path)."),
    ],
    pr: Annotated[int, typer.Option("--pr", metavar="N", help="Pull (merge) request number.")],
    body_file: Annotated[
        Path,
        typer.Option(
            "--body-file",
            metavar="PATH",
            help="Markdown to post ('-' reads stdin); default: the last `loopline ci report`.",
        ),
    ] = DEFAULT_REPORT_DIR / "report.md",
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            metavar="URL",
            help="API base for self-hosted instances (default: GITHUB_API_URL / CI_API_V4_URL, else the public one).",
        ),
    ] = None,
    marker: Annotated[
        str, typer.Option("--marker", help="Identifies our comment, so reruns update it.")
    ] = "loopline-report",
) -> None:
    """Post the report on a pull request, or update the one posted before.

    The token comes from GITHUB_TOKEN or GITLAB_TOKEN and is never printed.
    """
    from loopline.ci.comment import post_comment
    from loopline.cli._output import stdout
    from loopline.errors import InvalidArgumentError

    if str(body_file) == "-":
        body = sys.stdin.read()
    else:
        try:
            body = body_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidArgumentError(
                f"{body_file} does not exist",
                hint="run `loopline ci report --format markdown` first, or pass --body-file",
            ) from None
    result = post_comment(provider.value, repo, pr, body, marker=marker, api_url=api_url)
    stdout().print(
        f"{result.action} comment {result.comment_id} {result.url}".rstrip(), highlight=False
    )


def init(
    directory: Annotated[
        Path, typer.Argument(metavar="[DIR]", help="Where to create the project (default: here).")
    ] = Path(),
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Project name for datasets, model and deployment (default: DIR's)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the scaffold's files.")] = False,
) -> None:
    """Create a working ML repository: pipeline, loopline.toml, tests, CI workflows, data."""
    from loopline.ci.scaffold import init_project, project_name
    from loopline.cli._output import stdout

    written = init_project(directory, name, force=force)
    console = stdout()
    base = directory.resolve()
    for path in written:
        console.print(f"  created {path.relative_to(base)}", highlight=False)
    project = name or project_name(base.name)
    console.print(
        f"\n[bold]{project}[/] is ready. Next:\n"
        f"  cd {directory}\n"
        "  loopline pipeline run pipeline.py --config loopline.toml\n"
        f"  loopline data tag {project}-train@latest pinned && "
        f"loopline data tag {project}-holdout@latest pinned\n"
        "  git init && git add . && git commit -m 'loopline scaffold'",
        highlight=False,
    )

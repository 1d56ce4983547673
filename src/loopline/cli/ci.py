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

__all__ = ["DEFAULT_REPORT_DIR", "app"]

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

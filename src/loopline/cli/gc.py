"""``loopline gc``: remove deleted runs for good, and the blobs nothing references."""

from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli._durations import parse_duration_ms
from loopline.cli._options import JsonOption
from loopline.cli._output import format_bytes, print_json, stdout
from loopline.cli._stores import database_url, open_blobs, open_database
from loopline.cli.db import BackendUriOption

if TYPE_CHECKING:
    from loopline.store.gc import GcReport

__all__ = ["gc"]


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Purge only runs deleted at least this long ago (e.g. 30d); default: all.",
        ),
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            metavar="DURATION",
            help="Keep unreferenced blobs younger than this (uploads in flight).",
        ),
    ] = "1h",
    backend_uri: BackendUriOption = None,
    artifacts_uri: Annotated[
        str | None,
        typer.Option(
            "--artifacts-uri", metavar="URI", help="Blob store (default: the configured one)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Purge deleted runs, then delete blobs that nothing references any more."""
    from loopline.store.gc import collect

    older_ms = None if older_than is None else parse_duration_ms(older_than, option="--older-than")
    grace_ms = parse_duration_ms(grace, option="--grace")
    db = open_database(database_url(ctx, backend_uri), migrate=True)
    blobs = open_blobs(ctx, artifacts_uri)
    try:
        report = collect(db, blobs, dry_run=dry_run, older_than_ms=older_ms, grace_ms=grace_ms)
    finally:
        blobs.close()
        db.close()
    if as_json:
        print_json(report.to_dict())
        return
    stdout().print(_summary(report, grace), markup=False)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(report: "GcReport", grace: str) -> str:
    """What a collection did, in two lines.

    >>> from loopline.store.gc import GcReport
    >>> print(_summary(GcReport(dry_run=True, runs_purged=["a"], blobs_scanned=3,
    ...     blobs_referenced=1, blobs_young=1, blobs_deleted=1, bytes_freed=2048), "1h"))
    would purge 1 deleted run and delete 1 blob (2.0 KiB)
    3 blobs scanned: 1 referenced, 1 unreferenced but younger than 1h (kept); nothing was changed
    """
    runs = _plural(len(report.runs_purged), "deleted run")
    blobs = f"{_plural(report.blobs_deleted, 'blob')} ({format_bytes(report.bytes_freed)})"
    if report.dry_run:
        first = f"would purge {runs} and delete {blobs}"
    else:
        first = f"purged {runs} and deleted {blobs}"
    second = (
        f"{_plural(report.blobs_scanned, 'blob')} scanned: {report.blobs_referenced} referenced"
    )
    if report.blobs_young:
        second += f", {report.blobs_young} unreferenced but younger than {grace} (kept)"
    if report.dry_run:
        second += "; nothing was changed"
    return f"{first}\n{second}"

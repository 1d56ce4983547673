"""``loopline db``: the metadata schema's revision, and upgrades in place."""

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli._options import JsonOption
from loopline.cli._output import print_json, stdout
from loopline.cli._stores import database_url, open_database
from loopline.errors import StoreError

if TYPE_CHECKING:
    from loopline.store.metadata import Database

__all__ = ["BackendUriOption", "app"]

app = typer.Typer(help="Inspect and upgrade the metadata database schema.", no_args_is_help=True)

BackendUriOption = Annotated[
    str | None,
    typer.Option(
        "--backend-uri",
        metavar="URI",
        help="Database URL (default: the tracking URI's, or LOOPLINE_HOME's SQLite file).",
    ),
]


def _sqlite_file_missing(url: str) -> bool:
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return False
    from pathlib import Path

    return not Path(path).exists()


@contextlib.contextmanager
def _database_errors(url: str) -> Iterator[None]:
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        safe = sa.make_url(url).render_as_string(hide_password=True)
        raise StoreError(
            f"the metadata database {safe} failed: {getattr(exc, 'orig', None) or exc}",
            hint="check that the database is reachable and the URL is right",
        ) from exc


def _is_known(db: "Database", revision: str) -> bool:
    """Whether this loopline's migrations know ``revision`` (else a newer one wrote it)."""
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(db.alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds of resolution errors
        return False


def _status(db: "Database | None", revision: str | None) -> str:
    from loopline.store.metadata import HEAD_REVISION

    if revision is None:
        return "empty"
    if revision == HEAD_REVISION:
        return "current"
    return "behind" if db is not None and _is_known(db, revision) else "ahead"


_MESSAGES = {
    "current": "{url}: revision {rev} (head)",
    "empty": "{url}: no schema yet; `loopline db upgrade` creates revision {head}",
    "behind": "{url}: revision {rev}; the newest is {head}: run `loopline db upgrade`",
    "ahead": "{url}: revision {rev} comes from a newer loopline (this one knows up to {head}): "
    "upgrade loopline",
}


@app.command("current")
def current(
    ctx: typer.Context, backend_uri: BackendUriOption = None, as_json: JsonOption = False
) -> None:
    """Show the schema revision of the database and the newest one this loopline knows."""
    from loopline.store.metadata import HEAD_REVISION

    url = database_url(ctx, backend_uri)
    revision: str | None = None
    safe_url = url
    status = "empty"
    if not _sqlite_file_missing(url):
        with _database_errors(url):
            db = open_database(url, migrate=False)
            try:
                safe_url = db.safe_url
                revision = db.current_revision()
                status = _status(db, revision)
            finally:
                db.close()
    if as_json:
        print_json(
            {
                "database": safe_url,
                "current": revision,
                "head": HEAD_REVISION,
                "status": status,
                "up_to_date": status == "current",
            }
        )
        return
    message = _MESSAGES[status].format(url=safe_url, rev=revision, head=HEAD_REVISION)
    stdout().print(message, markup=False)


@app.command("upgrade")
def upgrade(ctx: typer.Context, backend_uri: BackendUriOption = None) -> None:
    """Migrate the database schema in place to the newest revision."""
    url = database_url(ctx, backend_uri)
    with _database_errors(url):
        db = open_database(url, migrate=False)
        try:
            before = db.current_revision()
            db.upgrade()
            after = db.current_revision()
            safe_url = db.safe_url
        finally:
            db.close()
    if before == after:
        stdout().print(f"{safe_url}: already at revision {after} (head)", markup=False)
    else:
        stdout().print(f"{safe_url}: upgraded from {before or '(empty)'} to {after}", markup=False)

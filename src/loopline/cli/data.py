"""``loopline data``: version files and folders, compare, check out, tag, verify.

Importing this module imports typer only. The plain forms of ``add`` and ``status``
do not even come here: :func:`loopline.cli.main.main` runs them through
:mod:`loopline.data._cli` without typer, and the commands below call the same code.
Long work shows progress bars (files and bytes) on a terminal; Ctrl-C stops it
with nothing recorded (exit code 130). Every command works the same against a
``loopline server``.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._context import settings_for
from loopline.cli._errors import LooplineGroup
from loopline.cli._options import JsonOption
from loopline.cli._output import format_bytes, format_time, print_json
from loopline.data._cli import (
    EXIT_INTERRUPTED,
    Interrupted,
    change_summary,
    changes_table,
    fast_main,
    open_service,
    plural,
    progress_bar,
    run_add,
    run_status,
)

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.data.entities import TableChange, TransferResult
    from loopline.data.service import DataService

__all__ = ["app"]

app = typer.Typer(
    name="data",
    cls=LooplineGroup,
    help="Version datasets (files and folders), compare and check out versions, trace lineage.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)

RefArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME@REF", help="NAME, NAME@3, NAME@latest, NAME@TAG or NAME@sha:PREFIX."
    ),
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name.")]


# -- plumbing ------------------------------------------------------------------------------
@contextlib.contextmanager
def _service(ctx_or_settings: "typer.Context | Settings") -> Iterator["DataService"]:
    from loopline.config import Settings

    settings = (
        ctx_or_settings if isinstance(ctx_or_settings, Settings) else settings_for(ctx_or_settings)
    )
    try:
        with open_service(settings) as service:
            yield service
    except Interrupted:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def _echo(text: str) -> None:
    sys.stdout.write(text + "\n")


def _table(*columns: str, title: str | None = None) -> Any:
    from loopline.cli._output import table

    return table(*columns, title=title)


def _print(renderable: Any) -> None:
    from loopline.cli._output import stdout

    stdout().print(renderable)


def _esc(text: str) -> str:
    from loopline.cli._output import esc

    return esc(text)


# -- add, status -------------------------------------------------------------------------------
@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file or a folder.", show_default=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What changed.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Point this tag at the version.")
    ] = None,
    profile: Annotated[
        bool, typer.Option("--profile/--no-profile", help="Profile CSV and Parquet files.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Record PATH as a new version of NAME, when its content changed."""
    _run_add(settings_for(ctx), str(path), name, message, tag or [], profile, as_json)


def _run_add(
    settings: "Settings",
    path: str,
    name: str,
    message: str,
    tags: list[str],
    profile: bool,
    as_json: bool,
) -> None:
    try:
        run_add(settings, path, name, message, tags, profile, as_json)
    except Interrupted:
        raise typer.Exit(EXIT_INTERRUPTED) from None


@app.command("status")
def status(
    ctx: typer.Context,
    name: NameArg,
    path: Annotated[
        Path | None,
        typer.Argument(help="The working copy (default: where the latest version came from)."),
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with 3 when something changed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """What changed in a working copy since the latest version of NAME."""
    code = _run_status(
        settings_for(ctx), name, None if path is None else str(path), exit_code, as_json
    )
    if code:
        raise typer.Exit(code)


def _run_status(
    settings: "Settings", name: str, path: str | None, exit_code: bool, as_json: bool
) -> int:
    try:
        return run_status(settings, name, path, exit_code, as_json)
    except Interrupted:
        raise typer.Exit(EXIT_INTERRUPTED) from None


# -- listings --------------------------------------------------------------------------------
@app.command("list")
def list_datasets(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The datasets of the current project."""
    with _service(ctx) as service:
        rows = service.store.datasets(service.settings.project)
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "versions": r.versions,
                    "latest": r.latest,
                    "total_size": r.total_size,
                    "created_at": r.created_at,
                    "updated_at": r.updated_at,
                }
                for r in rows
            ]
        )
        return
    table = _table("Name", "Versions", "Latest", "Size", "Updated")
    for r in rows:
        table.add_row(
            _esc(r.name),
            str(r.versions),
            str(r.latest or "-"),
            format_bytes(r.total_size),
            format_time(r.updated_at),
        )
    _print(table)


@app.command("versions")
def versions(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """Every version of NAME, oldest first, with its tags."""
    from loopline.data.refs import check_name

    with _service(ctx) as service:
        rows = service.store.versions(service.settings.project, check_name(name))
        tags = service.store.tags_for([r.id for r in rows])
        found = [service.version(r) for r in rows]
        if as_json:
            print_json([v.to_dict() for v in found])
            return
    table = _table("Version", "Tags", "Files", "Size", "Digest", "Created", "By", "Message")
    for v in found:
        table.add_row(
            str(v.version),
            _esc(", ".join(tags.get(v.id, []))),
            f"{v.file_count:,}",
            format_bytes(v.total_size),
            _short(str(v.digest)),
            format_time(v.created_at),
            _esc(v.created_by),
            _esc(v.message),
        )
    _print(table)


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """One version: its metadata, tags and the schema of its tabular files."""
    with _service(ctx) as service:
        version = service.resolve(ref)
        if as_json:
            print_json(version.to_dict())
            return
        tags = version.tags
    lines = [
        f"[bold]{_esc(version.ref)}[/]  ({version.kind})",
        f"digest    {version.digest}",
        f"files     {version.file_count:,} ({format_bytes(version.total_size)})",
        f"created   {format_time(version.created_at)} by {_esc(version.created_by)}",
        f"source    {_esc(version.source)}",
        f"tags      {_esc(', '.join(tags)) or '-'}",
        f"message   {_esc(version.message) or '-'}",
    ]
    _print("\n".join(lines))
    for path, schema in version.schema.items():
        _print(_schema_table(path, schema))


def _schema_table(path: str, schema: dict[str, Any]) -> Any:
    if "error" in schema:
        return f"{_esc(path)}: not profiled ({_esc(schema['error'])})"
    title = f"{path} ({schema.get('format')}, {schema.get('rows', 0):,} rows)"
    table = _table("Column", "Type", title=_esc(title))
    for column in schema.get("columns", []):
        table.add_row(_esc(column["name"]), _esc(column["type"]))
    return table


@app.command("ls")
def ls(
    ctx: typer.Context,
    ref: RefArg,
    path: Annotated[str, typer.Argument(help="A folder or file inside the version.")] = "",
    as_json: JsonOption = False,
) -> None:
    """The files of a version (under PATH)."""
    from loopline.errors import NotFoundError

    with _service(ctx) as service:
        version = service.resolve(ref)
        entries = version.manifest.under(path)
    if path and not entries:
        raise NotFoundError(f"{version.ref} has nothing at {path!r}")
    if as_json:
        print_json(
            [
                {
                    "path": e.path,
                    "size": e.size,
                    "digest": f"blake3:{e.digest}",
                    "executable": e.executable,
                }
                for e in entries
            ]
        )
        return
    table = _table("Path", "Size", "Digest")
    for e in entries:
        table.add_row(
            _esc(e.path) + (" [dim](x)[/]" if e.executable else ""),
            format_bytes(e.size),
            e.digest[:12],
        )
    table.caption = f"{plural(len(entries), 'file')}, {format_bytes(sum(e.size for e in entries))}"
    _print(table)


@app.command("diff")
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="NAME@A", help="The older version.")],
    b: Annotated[str, typer.Argument(metavar="NAME@B", help="The newer version.")],
    as_json: JsonOption = False,
) -> None:
    """Files added, removed and modified from A to B; rows and columns of tabular files."""
    from loopline.data.diff import diff as compute_diff

    with _service(ctx) as service:
        result = compute_diff(service, a, b)
    if as_json:
        print_json(result.to_dict())
        return
    _echo(
        f"{result.a} -> {result.b}: {change_summary(result.changes)} "
        f"({plural(result.unchanged, 'file')} unchanged)"
    )
    if result.changes:
        _print(changes_table(result.changes))
    if result.tables:
        _print(_tables_table(result.tables))


def _tables_table(changes: "list[TableChange]") -> Any:
    table = _table("Table", "Rows before", "Rows after", "Schema changes", title="Tabular files")
    for t in changes:
        notes = [f"+{c}" for c in t.added_columns] + [f"-{c}" for c in t.removed_columns]
        notes += [f"{c}: {old} -> {new}" for c, old, new in t.retyped_columns]
        table.add_row(
            _esc(t.path),
            "-" if t.old_rows is None else f"{t.old_rows:,}",
            "-" if t.new_rows is None else f"{t.new_rows:,}",
            _esc(", ".join(notes)) or "-",
        )
    return table


# -- checkout, tag -----------------------------------------------------------------------------
@app.command("checkout")
def checkout(
    ctx: typer.Context,
    ref: RefArg,
    dest: Annotated[Path, typer.Argument(help="Where to write the files.")],
    link: Annotated[
        bool, typer.Option("--link", help="Read-only hard links to the stored blobs, no copies.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="Make an existing folder match (deletes extra files)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the files of a version to DEST, verified against their digests."""
    from loopline.data.checkout import checkout as run_checkout

    with _service(ctx) as service:
        result = run_checkout(
            service, ref, dest, link=link, force=force, progress=progress_bar("Checking out")
        )
    if as_json:
        print_json(result.to_dict())
        return
    how = ", ".join(f"{n:,} {m}" for m, n in sorted(result.methods.items())) or "nothing to write"
    extra = f", {result.removed:,} removed" if result.removed else ""
    _echo(
        f"{result.ref} -> {result.dest}: {plural(result.files, 'file')}, "
        f"{format_bytes(result.bytes)} ({how}{extra})"
    )


# -- remotes ------------------------------------------------------------------------------------
RemoteOption = Annotated[
    str,
    typer.Option(
        "--remote",
        "-r",
        metavar="URL",
        help="A remote blob store: a folder, file://PATH or s3://BUCKET/PREFIX.",
    ),
]


def _transfer_summary(result: "TransferResult") -> str:
    arrow = "->" if result.direction == "push" else "<-"
    recorded = "" if result.recorded else " (version already there)"
    return (
        f"{result.ref} {arrow} {result.remote}: {plural(result.moved, 'object')} moved "
        f"({format_bytes(result.bytes_moved)}), {result.skipped:,} already there{recorded}"
    )


@app.command("push")
def push(
    ctx: typer.Context, ref: RefArg, remote: RemoteOption, as_json: JsonOption = False
) -> None:
    """Copy a version to a remote; only objects the remote lacks move (a rerun resumes)."""
    from loopline.data.transfer import push as run_push

    with _service(ctx) as service:
        result = run_push(service, ref, remote, progress=progress_bar("Pushing"))
    if as_json:
        print_json(result.to_dict())
        return
    _echo(_transfer_summary(result))


@app.command("pull")
def pull(
    ctx: typer.Context, ref: RefArg, remote: RemoteOption, as_json: JsonOption = False
) -> None:
    """Copy a version from a remote, verified, with the same number and digest."""
    from loopline.data.transfer import pull as run_pull

    with _service(ctx) as service:
        result = run_pull(service, ref, remote, progress=progress_bar("Pulling"))
    if as_json:
        print_json(result.to_dict())
        return
    _echo(_transfer_summary(result))


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: RefArg,
    tag: Annotated[str, typer.Argument(metavar="TAG", help="The tag to set or move.")],
    as_json: JsonOption = False,
) -> None:
    """Point TAG at a version (moving it if needed; every move is kept)."""
    from loopline.data.refs import check_tag, parse_ref

    with _service(ctx) as service:
        version = service.resolve(ref)
        move = service.store.move_tag(
            service.settings.project, parse_ref(version.ref), check_tag(tag), service.settings.user
        )
    if as_json:
        print_json(
            {
                "name": move.name,
                "tag": move.tag,
                "from_version": move.from_version,
                "to_version": move.to_version,
            }
        )
    elif move.from_version is None:
        _echo(f"{move.name}@{move.tag} -> {move.to_version}")
    elif move.from_version == move.to_version:
        _echo(f"{move.name}@{move.tag} already points at {move.to_version}")
    else:
        _echo(f"{move.name}@{move.tag} moved {move.from_version} -> {move.to_version}")


@app.command("tags")
def tags(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """Every move of NAME's tags, oldest first."""
    from loopline.data.refs import check_name

    with _service(ctx) as service:
        history = service.store.tag_history(service.settings.project, check_name(name))
    if as_json:
        print_json(
            [
                {"tag": t, "from_version": a, "to_version": b, "actor": who, "created_at": when}
                for t, a, b, who, when in history
            ]
        )
        return
    table = _table("Tag", "From", "To", "By", "When")
    for t, a, b, who, when in history:
        table.add_row(_esc(t), "-" if a is None else str(a), str(b), _esc(who), format_time(when))
    _print(table)


# -- lineage ---------------------------------------------------------------------------------
@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(metavar="[NAME@REF]", help="A dataset version.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="RUN_ID", help="The versions a run read.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Which runs and models used a version, or (--run) which versions a run read."""
    from loopline.data.lineage import lineage as trace

    if (ref is None) == (run is None):
        raise typer.BadParameter("give a NAME@REF or --run RUN_ID (one of them)")
    with _service(ctx) as service:
        result = trace(service, ref, run_id=run)
    if as_json:
        print_json(result.to_dict())
        return
    if run is not None:
        table = _table("Dataset version", "Context", title=f"Inputs of run {run}")
        for version_ref, context in result.datasets:
            table.add_row(_esc(version_ref), _esc(context) or "-")
        _print(table)
        return
    table = _table("Run", "Context", "When", title=f"Runs that read {result.subject}")
    for r in result.runs:
        table.add_row(r.run_id, _esc(r.context) or "-", format_time(r.created_at))
    _print(table)
    if result.models:
        models = _table("Model", "Version", "Run", title="Model versions built from it")
        for m in result.models:
            models.add_row(_esc(m.model), str(m.version), m.run_id or "-")
        _print(models)


# -- store maintenance -----------------------------------------------------------------------
@app.command("gc")
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")
    ] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace", metavar="DURATION", help="Keep unreferenced blobs younger than this."
        ),
    ] = "1h",
    as_json: JsonOption = False,
) -> None:
    """Delete blobs that no version (nor anything else) references."""
    from loopline.cli._durations import parse_duration_ms
    from loopline.data.gc import gc as collect

    grace_ms = parse_duration_ms(grace, option="--grace")
    with _service(ctx) as service:
        result = collect(service, dry_run=dry_run, grace_seconds=grace_ms / 1000)
    if as_json:
        print_json(result.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    _echo(
        f"{verb} {plural(result.blobs_deleted, 'blob')} ({format_bytes(result.bytes_freed)}) "
        f"and {plural(result.cache_dirs_removed, 'cached copy', 'cached copies')}; "
        f"{plural(result.blobs_scanned, 'blob')} scanned, {result.blobs_referenced:,} referenced, "
        f"{result.blobs_young:,} younger than {grace} kept"
    )


@app.command("verify")
def verify(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(metavar="[NAME@REF]", help="Only this version's blobs.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rehash stored blobs; report corrupt and missing ones (exit code 3 when any)."""
    from loopline.data.verify import verify as run_verify

    with _service(ctx) as service:
        report = run_verify(service, ref, progress=progress_bar("Verifying"))
    if as_json:
        print_json(report.to_dict())
    else:
        _echo(
            f"{plural(report.blobs_checked, 'blob')} rehashed ({format_bytes(report.bytes_checked)}): "
            f"{len(report.corrupt):,} corrupt, {len(report.missing):,} missing"
        )
        for digest, where in report.corrupt:
            sys.stderr.write(f"corrupt: {digest} at {where}\n")
        for digest, who in report.missing:
            sys.stderr.write(f"missing: {digest} needed by {who}\n")
    if not report.ok:
        raise typer.Exit(3)


if __name__ == "__main__":  # pragma: no cover - `python -m loopline.cli.data` before registration
    code = fast_main(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    app(prog_name="loopline data")

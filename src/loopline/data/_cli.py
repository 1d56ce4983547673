"""``loopline data add`` and ``status`` without typer: the command line's fast path.

Re-adding or checking an unchanged tree of 20,000 files has a budget of 0.3 s of
wall time, and importing typer (with click) costs a third of it, pydantic (which
this typer version uses to validate parameters) another 70-90 ms. So
:func:`loopline.cli.main.main` hands ``loopline data ...`` to :func:`fast_main`
first: the plain forms of ``add`` and ``status`` are parsed and run here; anything
else (``--help``, an argument error, another command) returns None and typer
answers. The typer commands in :mod:`loopline.cli.data` call the same
:func:`run_add` and :func:`run_status`, so both paths print the same text.

Ctrl-C during the work leaves nothing partial behind (blobs are written by temp
file and rename, the version in one transaction) and exits with code 130.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.config import Settings
    from loopline.data.entities import Change
    from loopline.data.progress import Progress
    from loopline.data.service import DataService

__all__ = [
    "EXIT_INTERRUPTED",
    "Interrupted",
    "change_summary",
    "changes_table",
    "fast_main",
    "open_service",
    "parse_fast",
    "plural",
    "progress_bar",
    "run_add",
    "run_status",
]

EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """Ctrl-C stopped a command; the message was printed, the exit code is 130."""


@contextlib.contextmanager
def open_service(settings: Settings) -> Iterator[DataService]:
    """A data service for one command, closed after it; Ctrl-C becomes :class:`Interrupted`."""
    from loopline.data.service import DataService

    service = DataService(settings)
    try:
        yield service
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing partial was left behind\n")
        raise Interrupted from None
    finally:
        service.close()


def progress_bar(label: str) -> Progress | None:
    """Progress bars (bytes, files, speed) on stderr when it is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from loopline.data.progress import Progress

    class RichProgress(Progress):
        """A bar of bytes with a count of files; shown only for work worth watching."""

        def __init__(self) -> None:
            self._bar: Any = None
            self._task: Any = None

        def start(self, files: int, size: int) -> None:
            if files < 500 and size < 64 << 20:
                return
            import rich.progress as rich_progress
            from rich.console import Console

            self._bar = rich_progress.Progress(
                rich_progress.TextColumn(f"[bold]{label}[/]"),
                rich_progress.BarColumn(),
                rich_progress.DownloadColumn(binary_units=True),
                rich_progress.TextColumn("{task.fields[done]:,}/{task.fields[files]:,} files"),
                rich_progress.TransferSpeedColumn(),
                rich_progress.TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task(label, total=max(size, 1), done=0, files=files)
            self._bar.start()

        def update(self, files: int, size: int) -> None:
            if self._bar is not None:
                self._bar.update(self._task, completed=size, done=files)

        def finish(self) -> None:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    return RichProgress()


def plural(count: int, word: str, many: str | None = None) -> str:
    """
    >>> plural(1, "file"), plural(2, "cached copy", "cached copies")
    ('1 file', '2 cached copies')
    """
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def _echo(text: str) -> None:
    sys.stdout.write(text + "\n")


# -- the two commands ----------------------------------------------------------------------
def run_add(
    settings: Settings,
    path: str,
    name: str,
    message: str,
    tags: list[str],
    profile: bool,
    as_json: bool,
) -> None:
    """``loopline data add``: record PATH as a version of NAME and say what happened."""
    from loopline.cli._output import format_bytes, print_json
    from loopline.data.add import add as add_version

    with open_service(settings) as service:
        version = add_version(
            service,
            path,
            name,
            message=message,
            tags=tags,
            profile=profile,
            progress=progress_bar("Adding"),
        )
        if as_json:
            print_json(version.to_dict())
            return
        size = f"{plural(version.file_count, 'file')}, {format_bytes(version.total_size)}"
        tagged = f", tagged {', '.join(tags)}" if tags else ""
        if version.unchanged:
            _echo(f"{version.ref} unchanged ({size}){tagged}")
        else:
            short = str(version.digest).split(":", 1)[-1][:12]
            _echo(f"{version.ref} recorded: {size}, sha:{short}{tagged}")


def run_status(
    settings: Settings, name: str, path: str | None, exit_code: bool, as_json: bool
) -> int:
    """``loopline data status``: print what changed; the exit code (3: changed, with --exit-code)."""
    from loopline.cli._output import print_json
    from loopline.data.status import status as compute_status

    with open_service(settings) as service:
        result = compute_status(service, name, path, progress=progress_bar("Hashing"))
    if as_json:
        print_json(result.to_dict())
    elif result.clean:
        _echo(f"{result.path}: up to date with {result.ref} ({plural(result.unchanged, 'file')})")
    else:
        from loopline.cli._output import stdout

        against = result.ref or f"{name} (no version yet)"
        _echo(f"{result.path} vs {against}: {change_summary(result.changes)}")
        stdout().print(changes_table(result.changes))
    return 3 if exit_code and not result.clean else 0


def change_summary(changes: list[Change]) -> str:
    """
    >>> from loopline.data.entities import Change
    >>> change_summary([Change("a", "added", None, 1), Change("b", "added", None, 2)])
    '2 added'
    """
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.change] = counts.get(change.change, 0) + 1
    parts = [f"{counts[k]:,} {k}" for k in ("added", "removed", "modified") if k in counts]
    return ", ".join(parts) or "no changes"


def changes_table(changes: list[Change], limit: int = 200) -> Any:
    """A rich table of file changes (the first ``limit``)."""
    from loopline.cli._output import esc, format_bytes, table

    styles = {"added": "green", "removed": "red", "modified": "yellow"}
    shown = table("", "Path", "Before", "After")
    for change in changes[:limit]:
        shown.add_row(
            f"[{styles[change.change]}]{change.change}[/]",
            esc(change.path),
            format_bytes(change.old_size) if change.old_size is not None else "-",
            format_bytes(change.new_size) if change.new_size is not None else "-",
        )
    if len(changes) > limit:
        shown.caption = f"{len(changes) - limit:,} more (use --json for all)"
    return shown


# -- parsing -------------------------------------------------------------------------------
_FLAGS = {
    "--json": "as_json",
    "--no-profile": "no_profile",
    "--profile": "profile",
    "--exit-code": "exit_code",
}
_VALUED = {
    "--name": "name",
    "-n": "name",
    "--message": "message",
    "-m": "message",
    "--tag": "tags",
    "-t": "tags",
}


def _split(rest: list[str]) -> tuple[dict[str, Any], list[str]] | None:
    """Options and positional arguments; None at anything unusual (typer then answers)."""
    found: dict[str, Any] = {"tags": []}
    positional: list[str] = []
    i = 0
    while i < len(rest):
        token = rest[i]
        key, eq, value = token.partition("=")
        if token in _FLAGS:
            found[_FLAGS[token]] = True
        elif key in _VALUED and (eq or i + 1 < len(rest)):
            if not eq:
                i += 1
                value = rest[i]
            if _VALUED[key] == "tags":
                found["tags"].append(value)
            else:
                found[_VALUED[key]] = value
        elif token.startswith("-") and token != "-":
            return None  # --help, a typo, an option of another command
        else:
            positional.append(token)
        i += 1
    return found, positional


def parse_fast(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """``add`` and ``status`` arguments in their plain forms; None for anything else.

    >>> parse_fast(["add", "d", "-n", "x", "--tag=a", "-t", "b"])
    ('add', {'path': 'd', 'name': 'x', 'message': '', 'tags': ['a', 'b'], 'profile': True, 'as_json': False})
    >>> parse_fast(["status", "x", "--exit-code"])
    ('status', {'name': 'x', 'path': None, 'exit_code': True, 'as_json': False})
    >>> parse_fast(["add", "d", "--help"]) is None
    True
    """
    if not args or args[0] not in ("add", "status"):
        return None
    split = _split(args[1:])
    if split is None:
        return None
    found, positional = split
    as_json = bool(found.get("as_json"))
    if args[0] == "add":
        if len(positional) != 1 or "name" not in found or "exit_code" in found:
            return None
        return "add", {
            "path": positional[0],
            "name": found["name"],
            "message": found.get("message", ""),
            "tags": found["tags"],
            "profile": not found.get("no_profile"),
            "as_json": as_json,
        }
    if not 1 <= len(positional) <= 2 or set(found) - {"tags", "exit_code", "as_json"}:
        return None
    if found["tags"]:
        return None
    return "status", {
        "name": positional[0],
        "path": positional[1] if len(positional) == 2 else None,
        "exit_code": bool(found.get("exit_code")),
        "as_json": as_json,
    }


def fast_main(args: list[str]) -> int | None:
    """Run ``loopline data add|status`` without typer; the exit code, or None: not handled."""
    parsed = parse_fast(args)
    if parsed is None:
        return None
    from loopline.config import Settings
    from loopline.errors import LooplineError

    command, options = parsed
    try:
        if command == "add":
            run_add(Settings.from_env(), **options)
            return 0
        return run_status(Settings.from_env(), **options)
    except Interrupted:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before the work started: nothing to undo
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except LooplineError as exc:
        from loopline.cli._errors import exit_code_for, report_error  # errors need not be fast

        report_error(exc)
        return exit_code_for(exc)

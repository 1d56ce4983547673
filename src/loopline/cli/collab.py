"""``loopline users``, ``tokens``, ``projects`` and ``audit``: who may do what, and the record.

Each command works on the store or server the settings name. On a store (the
embedded one, or ``--tracking-uri postgresql+psycopg://...``) whoever can open the
database administers it: that is how the first administrator is made
(``loopline users create admin --admin``). Through a server
(``LOOPLINE_TRACKING_URI=http://...``) the token in ``LOOPLINE_TRACKING_TOKEN``
decides what is allowed.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._context import settings_for
from loopline.cli._errors import LooplineGroup
from loopline.cli._output import esc, format_time, print_json, stdout, table

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.auth.client import AccessClient

__all__ = ["audit_app", "projects_app", "tokens_app", "users_app"]


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=LooplineGroup, help=help_text, no_args_is_help=True, rich_markup_mode="rich"
    )


users_app = _group("Users of a shared server: create, list, disable.")
tokens_app = _group("Personal API tokens: create (shown once), list, revoke.")
projects_app = _group("Projects and their members' roles (viewer, editor, maintainer, admin).")
audit_app = _group("The audit log: every change, who made it, when and from where.")
members_app = _group("A project's members and their roles.")
projects_app.add_typer(members_app, name="members")
webhooks_app = _group(
    "Webhooks: your notifications (or a project's: mentions, approval requests, alerts) "
    "POSTed as JSON to a URL."
)
projects_app.add_typer(webhooks_app, name="webhooks")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", "-u", help="Whose tokens (default: you; others need an admin)."),
]


@contextlib.contextmanager
def _access(ctx: typer.Context) -> Iterator[AccessClient]:
    from loopline.auth.client import open_access

    client = open_access(settings_for(ctx))
    try:
        yield client
    finally:
        client.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


# -- users ----------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_' or '-'.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="A server administrator (all projects).")
    ] = False,
    email: Annotated[str, typer.Option("--email", help="Contact address.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    no_password: Annotated[
        bool,
        typer.Option("--no-password", help="No password: the user signs in with tokens only."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (the first one, made on the store itself, should be --admin)."""
    password = None if no_password else _read_password(password_stdin)
    with _access(ctx) as access:
        user = access.create_user(name, password, email=email, admin=admin)
    if as_json:
        print_json(user)
        return
    role = "administrator" if admin else "user"
    stdout().print(f"created {role} [bold]{esc(name)}[/]")


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users."""
    with _access(ctx) as access:
        users = access.list_users()
    if as_json:
        print_json(users)
        return
    grid = table("name", "email", "admin", "disabled", "created")
    for u in users:
        grid.add_row(
            esc(u["name"]),
            esc(u.get("email", "")),
            "yes" if u["is_admin"] else "",
            "yes" if u["disabled"] else "",
            format_time(u.get("created_at")),
        )
    stdout().print(grid)


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    with _access(ctx) as access:
        access.set_disabled(name, True)
    stdout().print(f"disabled {esc(name)}")


@users_app.command("enable")
def users_enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user again."""
    with _access(ctx) as access:
        access.set_disabled(name, False)
    stdout().print(f"enabled {esc(name)}")


# -- tokens ---------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.")] = "",
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", min=0.001, help="Lifetime in days.")
    ] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it: it is shown this once, only its digest is kept."""
    with _access(ctx) as access:
        secret, info = access.create_token(user, name, expires_in)
    if as_json:
        print_json({"token": secret, **info})
        return
    stdout().print(secret)
    from loopline.cli._output import stderr

    stderr().print(
        f"token {info['id']} ({info['prefix']}...) created; it is not shown again. "
        "Use it with LOOPLINE_TRACKING_TOKEN (or MLFLOW_TRACKING_TOKEN)."
    )


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    with _access(ctx) as access:
        tokens = access.list_tokens(user)
    if as_json:
        print_json(tokens)
        return
    grid = table("id", "name", "prefix", "created", "expires", "last used", "state")
    for t in tokens:
        grid.add_row(
            str(t["id"]),
            esc(t["name"]),
            esc(t["prefix"]) + "...",
            format_time(t["created_at"]),
            format_time(t["expires_at"]) if t["expires_at"] else "never",
            format_time(t["last_used_at"]) if t["last_used_at"] else "",
            "revoked" if t["revoked_at"] else "active",
        )
    stdout().print(grid)


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(min=1, help="The id `tokens list` shows.")],
    user: UserOpt = None,
) -> None:
    """Revoke a token: the next request that uses it is refused."""
    with _access(ctx) as access:
        access.revoke_token(user, token_id)
    stdout().print(f"revoked token {token_id}")


# -- projects -------------------------------------------------------------------------------


@projects_app.command("create")
def projects_create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Create a project (through a server, you become its admin)."""
    with _access(ctx) as access:
        access.create_project(name, description)
    stdout().print(f"created project [bold]{esc(name)}[/]")


@projects_app.command("list")
def projects_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List projects (through a server: those you belong to)."""
    with _access(ctx) as access:
        found = access.list_projects()
    if as_json:
        print_json(found)
        return
    grid = table("name", "four-eyes", "your role", "description")
    for p in found:
        grid.add_row(
            esc(p["name"]),
            "yes" if p.get("four_eyes") else "",
            esc(p.get("role", "")),
            esc(p.get("description", "")),
        )
    stdout().print(grid)


@projects_app.command("policy")
def projects_policy(
    ctx: typer.Context,
    name: str,
    four_eyes: Annotated[
        bool,
        typer.Option(
            "--four-eyes/--no-four-eyes",
            help="Approvals must come from a maintainer other than the version's author.",
        ),
    ],
) -> None:
    """Set a project's review policy."""
    with _access(ctx) as access:
        access.set_four_eyes(name, four_eyes)
    state = "required" if four_eyes else "not required"
    stdout().print(f"four-eyes review is {state} in {esc(name)}")


@members_app.command("list")
def members_list(ctx: typer.Context, project: str, as_json: JsonOpt = False) -> None:
    """A project's members and their roles."""
    with _access(ctx) as access:
        found = access.members(project)
    if as_json:
        print_json(found)
        return
    grid = table("user", "role", "added by")
    for m in found:
        grid.add_row(esc(m["user"]), m["role"], esc(m["added_by"]))
    stdout().print(grid)


@members_app.command("add")
def members_add(
    ctx: typer.Context,
    project: str,
    user: str,
    role: Annotated[
        str, typer.Option("--role", "-r", help="viewer, editor, maintainer or admin.")
    ] = "viewer",
) -> None:
    """Give a user a role in a project (replaces the role they had)."""
    from loopline.auth.roles import Role

    Role.parse(role)
    with _access(ctx) as access:
        access.set_member(project, user, role.lower())
    stdout().print(f"{esc(user)} is {role.lower()} in {esc(project)}")


@members_app.command("remove")
def members_remove(ctx: typer.Context, project: str, user: str) -> None:
    """Remove a user from a project."""
    with _access(ctx) as access:
        access.remove_member(project, user)
    stdout().print(f"removed {esc(user)} from {esc(project)}")


HookProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="A project's webhook (its admins); default: yours."),
]


@webhooks_app.command("add")
def webhooks_add(ctx: typer.Context, url: str, project: HookProjectOpt = None) -> None:
    """POST each new notification to URL (retried with backoff when it fails)."""
    with _access(ctx) as access:
        hook = access.add_webhook(url, project)
    whose = f"project {esc(project)}" if project else "your notifications"
    stdout().print(f"webhook {hook['id']}: {whose} -> {esc(url)}")


@webhooks_app.command("list")
def webhooks_list(
    ctx: typer.Context, project: HookProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Your webhooks, or a project's, with their delivery counts."""
    with _access(ctx) as access:
        found = access.list_webhooks(project)
    if as_json:
        print_json(found)
        return
    grid = table("id", "url", "for", "delivered", "failed", "last error")
    for h in found:
        grid.add_row(
            str(h["id"]),
            esc(h["url"]),
            esc(h["project"] or h["user"] or ""),
            str(h["delivered"]),
            str(h["failed"]),
            esc(h["last_error"]),
        )
    stdout().print(grid)


@webhooks_app.command("remove")
def webhooks_remove(ctx: typer.Context, hook_id: int) -> None:
    """Remove a webhook (by the id `webhooks list` shows)."""
    with _access(ctx) as access:
        access.remove_webhook(hook_id)
    stdout().print(f"removed webhook {hook_id}")


# -- audit ----------------------------------------------------------------------------------

ActorOpt = Annotated[str | None, typer.Option("--actor", help="Only this user's changes.")]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="Only this project.")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only newer entries: 30m, 12h, 7d or epoch ms.")
]


def _since(text: str | None) -> int | None:
    import time

    from loopline.errors import InvalidArgumentError

    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text.isdigit():
        return int(text)
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise InvalidArgumentError(
            f"not a duration: {text!r}", hint="use e.g. 30m, 12h, 7d or milliseconds"
        ) from None
    return int((time.time() - seconds) * 1000)


def _filters(actor: str | None, project: str | None, since: str | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if actor:
        filters["actor"] = actor
    if project:
        filters["project"] = project
    start = _since(since)
    if start is not None:
        filters["since"] = start
    return filters


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    actor: ActorOpt = None,
    project: ProjectOpt = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N entries.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Who changed what, when and from where (newest last)."""
    from collections import deque

    with _access(ctx) as access:
        entries = list(deque(access.audit(**_filters(actor, project, since)), maxlen=limit))
    if as_json:
        print_json(entries)
        return
    grid = table("when", "actor", "request", "status", "project", "from")
    for e in entries:
        grid.add_row(
            format_time(e["created_at"]),
            esc(e["actor"]) + ("" if e["authenticated"] else " (unauthenticated)"),
            esc(f"{e['method']} {e['path']}"),
            str(e["status"]),
            esc(e["project"]),
            esc(e["origin"]),
        )
    stdout().print(grid)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    actor: ActorOpt = None,
    project: ProjectOpt = None,
    since: SinceOpt = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Every matching entry as JSON lines (one object per line)."""
    import orjson

    from loopline.cli._output import stderr

    with _access(ctx) as access:
        entries = access.audit(**_filters(actor, project, since))
        if output is None:
            for entry in entries:
                sys.stdout.write(orjson.dumps(entry).decode() + "\n")
            return
        from pathlib import Path

        target = Path(output)
        partial = target.with_name(target.name + ".partial")
        count = 0
        with open(partial, "wb") as out:
            for entry in entries:
                out.write(orjson.dumps(entry) + b"\n")
                count += 1
        partial.replace(target)  # a reader never sees half an export
    stderr().print(f"wrote {count} entries to {esc(output)}")

"""``loopline models``: the model registry from the command line.

References name versions as ``NAME@3``, ``NAME@champion`` (an alias), ``NAME@latest``
or ``NAME`` alone (the latest); URIs are ``models:/NAME/3``, ``models:/NAME@alias``,
``models:/m-<id>`` and ``runs:/<run_id>/<path>``.
"""

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._context import settings_for
from loopline.cli._options import JsonOption
from loopline.cli._output import esc, format_time, format_value, print_json, stdout, table

if TYPE_CHECKING:
    from rich.tree import Tree

    from loopline.refs import Ref
    from loopline.registry.client import RegistryClient
    from loopline.registry.entities import (
        ModelVersion,
        PredictionComparison,
        VersionComparison,
        VersionLineage,
    )

__all__ = ["app"]

app = typer.Typer(
    help="Registered models: versions, aliases, reviews, lineage and comparisons.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Move, delete and trace aliases (champion, challenger, ...).")
app.add_typer(alias_app, name="alias")

RefArg = Annotated[
    str, typer.Argument(metavar="NAME@REF", help="NAME@3, NAME@ALIAS, NAME@latest or NAME.")
]
VersionRefArg = Annotated[
    str, typer.Argument(metavar="NAME@VERSION", help="The version (NAME@3, or NAME@ALIAS).")
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")]
CommentOption = Annotated[str, typer.Option("--message", "-m", help="A comment for the record.")]

_REVIEW_STYLES = {"approved": "green", "rejected": "red", "pending_review": "yellow"}


@contextlib.contextmanager
def _registry(ctx: typer.Context) -> Iterator["RegistryClient"]:
    from loopline.registry.client import RegistryClient

    client = RegistryClient(settings=settings_for(ctx))
    try:
        yield client
    finally:
        client.close()


def _ref(text: str, param: str) -> "Ref":
    """A parsed NAME@REF; a malformed one is a usage error (exit code 2)."""
    from loopline.errors import InvalidArgumentError
    from loopline.refs import parse_ref

    try:
        return parse_ref(text)
    except InvalidArgumentError as exc:
        raise typer.BadParameter(str(exc), param_hint=param) from None


def _review(status: str) -> str:
    style = _REVIEW_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _version_json(v: "ModelVersion") -> dict[str, Any]:
    data = v.to_dict()
    data["ref"] = v.ref
    data["uri"] = v.uri
    return data


@app.command("list")
def list_models(
    ctx: typer.Context,
    filter_string: Annotated[
        str | None, typer.Option("--filter", "-f", help="e.g. \"name LIKE 'churn%'\".")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models with their latest version and aliases."""
    with _registry(ctx) as reg:
        found = reg.search_registered_models(filter_string, ["name ASC"])
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    out = table("Name", "Latest", "Aliases", "Approval", "Updated", "Description")
    for m in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items())
        out.add_row(
            esc(m.name),
            str(m.latest_version or "-"),
            esc(aliases) or "-",
            "required" if m.require_approval else "-",
            format_time(m.updated_at),
            esc(m.description.splitlines()[0] if m.description else ""),
        )
    console = stdout()
    console.print(out)
    console.print(f"{len(found)} model{'s' if len(found) != 1 else ''}", style="dim", markup=False)


@app.command("versions")
def list_versions(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """List a model's versions, oldest first."""
    with _registry(ctx) as reg:
        found = reg.list_versions(name)
    if as_json:
        print_json([_version_json(v) for v in found])
        return
    out = table("Version", "Review", "Aliases", "Flavor", "Run", "Created", "By")
    for v in found:
        out.add_row(
            str(v.version),
            _review(v.review_status),
            esc(", ".join(v.aliases)) or "-",
            esc(v.flavor) or "-",
            (v.run_id or "-")[:12],
            format_time(v.created_at),
            esc(v.created_by),
        )
    stdout().print(out)


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Show a version: source, run, review, aliases, tags, signature and files."""
    parsed = _ref(ref, "NAME@REF")
    with _registry(ctx) as reg:
        v = reg.resolve(str(parsed))
        files = reg.transport.model_files(v.uri).files
        reviews = reg.list_reviews(v.name, v.version)
    if as_json:
        data = _version_json(v)
        data["files"] = [f.to_dict() for f in files]
        data["reviews"] = [r.to_dict() for r in reviews]
        print_json(data)
        return
    from loopline.cli._output import format_bytes

    console = stdout()
    grid = table("Field", "Value", title=f"{esc(v.ref)}  ({esc(v.uri)})")
    for label, value in (
        ("Source", esc(v.source)),
        ("Run", esc(v.run_id or "-")),
        ("Logged model", esc(v.logged_model_id or "-")),
        ("Flavor", esc(v.flavor or "-")),
        ("Review", _review(v.review_status)),
        ("Aliases", esc(", ".join(v.aliases)) or "-"),
        ("Created", f"{format_time(v.created_at)} by {esc(v.created_by)}"),
        ("Description", esc(v.description) or "-"),
    ):
        grid.add_row(label, value)
    for key, value in sorted(v.tags.items()):
        grid.add_row(f"tag {esc(key)}", esc(value))
    console.print(grid)
    if v.signature:
        import json

        console.print("Signature:", style="bold")
        console.print(json.dumps(v.signature, indent=2), markup=False)
    listing = table("File", "Size", "Digest", title="Files")
    for f in files:
        listing.add_row(esc(f.path), format_bytes(f.size), f.digest[:19])
    console.print(listing)
    if reviews:
        history = table("When", "Decision", "Reviewer", "Comment", title="Reviews")
        for r in reviews:
            history.add_row(format_time(r.created_at), r.decision, esc(r.reviewer), esc(r.comment))
        console.print(history)


@app.command("lineage")
def lineage(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Print the chain: version -> run -> dataset versions (-> pipeline runs)."""
    parsed = _ref(ref, "NAME@REF")
    with _registry(ctx) as reg:
        found = reg.lineage(str(parsed))
    if as_json:
        print_json(found.to_dict())
        return
    stdout().print(_lineage_tree(found))


def _lineage_tree(found: "VersionLineage") -> "Tree":
    """The lineage as a tree: version, its run and data, its pipeline run, deployments."""
    from rich.tree import Tree

    root = Tree(f"[bold]{esc(found.model)}@{found.version}[/bold]  {esc(found.source)}")
    if found.logged_model_id:
        root.add(f"logged model {esc(found.logged_model_id)}")
    if found.run_id:
        label = f"run {esc(found.run_id)}"
        if found.run_name:
            label += (
                f" ({esc(found.run_name)}, experiment {found.experiment_id}, {found.run_status})"
            )
        run = root.add(label)
        for use in found.datasets:
            if use.via == "run":
                context = f"  [{esc(use.context)}]" if use.context else ""
                run.add(f"dataset {esc(use.ref)}{context}  [dim]{use.digest[:19]}[/dim]")
        for pipeline_run in found.pipeline_runs:
            node = run.add(f"pipeline run {esc(pipeline_run)}")
            for use in found.datasets:
                if use.via == "pipeline":  # read by the pipeline's other steps (training)
                    node.add(f"dataset {esc(use.ref)}  [dim]{use.digest[:19]}[/dim]")
    else:
        root.add("[dim]no run recorded[/dim]")
    for use in found.datasets:
        if use.via == "direct":
            root.add(f"dataset {esc(use.ref)} (direct)  [dim]{use.digest[:19]}[/dim]")
    for edge in found.downstream:
        root.add(f"→ {esc(edge['type'])} {esc(edge['id'])} ({esc(edge['relation'])})")
    return root


@app.command("diff")
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="NAME@A", help="The first version.")],
    b: Annotated[str, typer.Argument(metavar="NAME@B", help="The second version.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Only params and metrics that differ.")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="DATASET@REF",
            help="Also predict with both versions on this tabular dataset version.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="COL",
            help="The dataset's label column: dropped from the input, scored against.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two versions of a model: their runs' params and metrics side by side and,
    with --dataset, their predictions on a dataset version."""
    left, right = _ref(a, "NAME@A"), _ref(b, "NAME@B")
    if left.name != right.name:
        raise typer.BadParameter(
            f"both versions must belong to one model ({left.name!r} vs {right.name!r})",
            param_hint="NAME@B",
        )
    if target is not None and dataset is None:
        raise typer.BadParameter("--target needs --dataset", param_hint="--target")
    with _registry(ctx) as reg:
        found = reg.compare_versions(left.name, _ref_value(left), _ref_value(right))
    if dataset is not None:
        found.predictions = _compare_predictions(ctx, found, dataset, target)
    rows = [r for r in found.rows if r.differs or not diff_only]
    if as_json:
        data = found.to_dict()
        data["rows"] = [
            dict(r, differs=row.differs) for r, row in zip(data["rows"], found.rows, strict=True)
        ]
        data["rows"] = [r for r in data["rows"] if r["differs"] or not diff_only]
        print_json(data)
        return
    out = table("", "Key", found.a.ref, found.b.ref)
    for row in rows:
        style = "bold yellow" if row.differs else ""
        cells = [format_value(row.a), format_value(row.b)]
        out.add_row(
            row.section,
            esc(row.key),
            *(f"[{style}]{esc(c)}[/{style}]" if style else esc(c) for c in cells),
        )
    console = stdout()
    console.print(out)
    if not rows:
        console.print("no params or metrics to compare", style="dim", markup=False)
    if found.predictions is not None:
        _print_predictions(found)


def _compare_predictions(
    ctx: typer.Context, found: "VersionComparison", dataset: str, target: str | None
) -> "PredictionComparison":
    """Both versions' predictions on ``dataset``, loaded through the SDK on these settings."""
    from loopline.config import reset_settings
    from loopline.registry import api
    from loopline.registry._predictions import compare_predictions

    reset_settings(settings_for(ctx))
    try:
        return compare_predictions(found.a, found.b, dataset, target)
    finally:
        api.close()


def _print_predictions(found: "VersionComparison") -> None:
    pred = found.predictions
    assert pred is not None
    console = stdout()
    if pred.agreement is not None:
        measure = f"agreement {format_value(pred.agreement)} (share of rows predicted alike)"
    else:
        measure = f"mean |a - b| {format_value(pred.mean_abs_diff)}"
    console.print(
        f"predictions on {pred.dataset} ({pred.rows} rows, {pred.task}): {measure}",
        markup=False,
    )
    if pred.metrics_a:
        out = table("Metric", found.a.ref, found.b.ref, title=f"against {pred.target}")
        for key, value in pred.metrics_a.items():
            cells = (key, format_value(value), format_value(pred.metrics_b.get(key)))
            out.add_row(*(esc(c) for c in cells))
        console.print(out)


def _ref_value(ref: "Ref") -> str:
    return (
        "latest"
        if ref.kind == "latest"
        else ref.value
        if ref.kind != "digest"
        else f"sha:{ref.value}"
    )


def _decide(ctx: typer.Context, ref: str, decision: str, comment: str) -> None:
    parsed = _ref(ref, "NAME@VERSION")
    with _registry(ctx) as reg:
        v = reg.resolve(str(parsed))
        found = reg.transport.review(v.name, v.version, decision, comment=comment)
    stdout().print(f"{found.decision} {v.ref} (by {found.reviewer})", markup=False)


@app.command("approve")
def approve(ctx: typer.Context, ref: VersionRefArg, message: CommentOption = "") -> None:
    """Approve a version (it may then take protected aliases)."""
    _decide(ctx, ref, "approved", message)


@app.command("reject")
def reject(ctx: typer.Context, ref: VersionRefArg, message: CommentOption = "") -> None:
    """Reject a version."""
    _decide(ctx, ref, "rejected", message)


@app.command("request-review")
def request_review(ctx: typer.Context, ref: VersionRefArg, message: CommentOption = "") -> None:
    """Ask for a review of a version (it becomes pending_review)."""
    _decide(ctx, ref, "requested", message)


@app.command("register")
def register(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(metavar="URI", help="runs:/RUN/PATH, models:/m-ID or models:/NAME/V.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="The registered model's name.")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", metavar="KEY=VALUE", help="Repeat for several."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a logged model as a new version (the model is created when missing)."""
    tags: dict[str, str] = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    with _registry(ctx) as reg:
        v = reg.register_model(uri, name, tags=tags, description=description)
    if as_json:
        print_json(_version_json(v))
        return
    stdout().print(f"registered {v.ref} ({v.review_status}) from {uri}", markup=False)


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    require_approval: Annotated[
        bool,
        typer.Option("--require-approval", help="New versions start pending review."),
    ] = False,
) -> None:
    """Create a registered model (registering a version creates it too)."""
    with _registry(ctx) as reg:
        reg.create_registered_model(name, description, None, require_approval)
    stdout().print(f"created model {name}", markup=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: VersionRefArg,
    force: Annotated[
        bool, typer.Option("--force", help="Also delete the aliases that point at it.")
    ] = False,
) -> None:
    """Delete a version (refused while an alias points at it, unless --force)."""
    parsed = _ref(ref, "NAME@VERSION")
    if parsed.kind != "version":
        raise typer.BadParameter("name the version by number: NAME@3", param_hint="NAME@VERSION")
    with _registry(ctx) as reg:
        reg.delete_model_version(parsed.name, parsed.version, force=force)
    stdout().print(f"deleted {parsed}", markup=False)


@app.command("download")
def download(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(metavar="URI", help="models:/NAME@ALIAS, models:/NAME/V, ...")
    ],
    dest: Annotated[
        str | None, typer.Argument(metavar="DEST", help="Folder; default: a new temporary one.")
    ] = None,
) -> None:
    """Write a model's files to a folder, checking every digest."""
    with _registry(ctx) as reg:
        path = reg.download_model(uri, dest)
    stdout().print(str(path), markup=False)


@app.command("env")
def env(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(metavar="URI", help="The model whose environment to print.")
    ],
) -> None:
    """Print a requirements file that recreates the model's environment."""
    try:
        from loopline.models import env as model_env  # type: ignore[attr-defined, import-not-found, unused-ignore]
    except ImportError as exc:
        from loopline.errors import LooplineError

        raise LooplineError(
            "this loopline has no model format support (loopline.models is missing)",
            hint="upgrade loopline",
            code="FEATURE_DISABLED",
        ) from exc
    from loopline.config import reset_settings

    reset_settings(settings_for(ctx))
    text = model_env(uri)
    typer.echo(str(text).rstrip("\n"))


# -- aliases ---------------------------------------------------------------------------------
@alias_app.command("set")
def alias_set(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str, typer.Argument(metavar="ALIAS")],
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1)],
    protect: Annotated[
        bool | None,
        typer.Option(
            "--protect/--unprotect",
            help="A protected alias only points at approved versions (default: unchanged).",
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", "-m", help="Why it moves (kept in the history).")
    ] = "",
) -> None:
    """Point ALIAS at VERSION (moved atomically; the move is kept in the history)."""
    with _registry(ctx) as reg:
        before = {a.alias: a.version for a in reg.list_aliases(name)}
        found = reg.set_alias(name, alias, version, protect=protect, reason=reason)
    was = before.get(alias)
    moved = (
        f"{was} → {found.version}"
        if was is not None and was != found.version
        else str(found.version)
    )
    lock = " (protected)" if found.protected else ""
    stdout().print(f"{name}@{alias} → version {moved}{lock}", markup=False)


@alias_app.command("delete")
def alias_delete(
    ctx: typer.Context, name: NameArg, alias: Annotated[str, typer.Argument(metavar="ALIAS")]
) -> None:
    """Delete an alias."""
    with _registry(ctx) as reg:
        reg.delete_alias(name, alias)
    stdout().print(f"deleted alias {name}@{alias}", markup=False)


@alias_app.command("history")
def alias_history(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[
        str | None, typer.Argument(metavar="ALIAS", help="Default: every alias.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every move of an alias: when, who, from which version to which."""
    with _registry(ctx) as reg:
        found = reg.alias_history(name, alias)
    if as_json:
        print_json([h.to_dict() for h in found])
        return
    out = table("When", "Alias", "From", "To", "By", "Reason")
    for h in found:
        out.add_row(
            format_time(h.created_at),
            esc(h.alias),
            str(h.from_version) if h.from_version is not None else "-",
            str(h.to_version) if h.to_version is not None else "(deleted)",
            esc(h.actor),
            esc(h.reason),
        )
    stdout().print(out)

"""``loopline experiments``: list, create, delete and restore experiments."""

from typing import Annotated

import typer

from loopline.cli._context import open_client, resolve_experiment
from loopline.cli._options import JsonOption, View, ViewOption
from loopline.cli._output import esc, format_time, print_json, stdout, table

__all__ = ["app"]

app = typer.Typer(
    help="Create, list, delete and restore experiments.",
    no_args_is_help=True,
)

ExperimentArg = Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="Experiment name or id.")]


@app.command("list")
def list_experiments(
    ctx: typer.Context, view: ViewOption = View.active, as_json: JsonOption = False
) -> None:
    """List experiments."""
    with open_client(ctx) as client:
        found = client.search_experiments(view=view.value)
    if as_json:
        print_json([exp.to_dict() for exp in found])
        return
    out = table("ID", "Name", "Stage", "Created", "Description")
    for exp in found:
        stage = exp.lifecycle_stage
        out.add_row(
            exp.experiment_id,
            esc(exp.name),
            stage if stage == "active" else f"[red]{stage}[/red]",
            format_time(exp.creation_time),
            esc(exp.description.splitlines()[0]) if exp.description else "",
        )
    stdout().print(out)


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--tag'")
        tags[key] = value
    return tags


@app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the experiment is for.")
    ] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", metavar="KEY=VALUE", help="A tag (repeat).")
    ] = None,
) -> None:
    """Create an experiment; prints its id."""
    if name.isdigit():
        raise typer.BadParameter("names may not be all digits (they read as ids)")
    tags = _parse_tags(tag or [])
    with open_client(ctx) as client:
        exp_id = client.create_experiment(name, description=description, tags=tags)
    stdout().print(f"created experiment {name!r} with id {exp_id}", markup=False)


@app.command("delete")
def delete_experiment(ctx: typer.Context, experiment: ExperimentArg) -> None:
    """Delete an experiment and its runs (restorable until `loopline gc`)."""
    with open_client(ctx) as client:
        exp = resolve_experiment(client, experiment)
        client.delete_experiment(exp.experiment_id)
    stdout().print(
        f"deleted experiment {exp.name!r} (id {exp.experiment_id}) and its runs; "
        f"undo with `loopline experiments restore {exp.experiment_id}`",
        markup=False,
    )


@app.command("restore")
def restore_experiment(ctx: typer.Context, experiment: ExperimentArg) -> None:
    """Restore a deleted experiment and its runs."""
    with open_client(ctx) as client:
        exp = resolve_experiment(client, experiment)
        client.restore_experiment(exp.experiment_id)
    stdout().print(
        f"restored experiment {exp.name!r} (id {exp.experiment_id}) and its runs", markup=False
    )

"""What every command shares: settings from the global options, the client, lookups."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopline.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    import typer

    from loopline.client.client import Client
    from loopline.tracking.entities import Experiment

__all__ = ["State", "open_client", "resolve_experiment", "settings_for"]


@dataclass(slots=True)
class State:
    """The global options, kept on the root context for every command."""

    tracking_uri: str | None = None


def settings_for(ctx: typer.Context) -> Settings:
    """Settings read from the environment now, with ``--tracking-uri`` applied."""
    settings = Settings.from_env()
    state = ctx.find_object(State)
    if state is not None and state.tracking_uri:
        settings = settings.with_(tracking_uri=state.tracking_uri)
    return settings


@contextlib.contextmanager
def open_client(ctx: typer.Context) -> Iterator[Client]:
    """A client on the store or server the settings name, closed afterwards."""
    from loopline.client.client import Client

    client = Client(settings=settings_for(ctx))
    try:
        yield client
    finally:
        client.close()


def resolve_experiment(client: Client, ref: str) -> Experiment:
    """An experiment by id (all digits) or by name; deleted ones included."""
    from loopline.errors import NotFoundError

    if ref.isdigit():
        return client.get_experiment(ref)
    found = client.get_experiment_by_name(ref)
    if found is None:
        raise NotFoundError(
            f"experiment {ref!r} does not exist",
            hint="list experiments with `loopline experiments list --view all`",
        )
    return found

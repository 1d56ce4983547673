"""``loopline serve`` (the inference server) and ``loopline predict`` (batch scoring)."""

from __future__ import annotations

import typer

__all__ = ["predict", "serve"]


def serve(ctx: typer.Context) -> None:
    """Serve models over the Open Inference Protocol (V2) and MLflow's /invocations."""
    raise typer.Exit(2)


def predict(ctx: typer.Context) -> None:
    """Score a file or a dataset version with a model, in chunks."""
    raise typer.Exit(2)

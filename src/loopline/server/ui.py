"""The web UI's built assets, served at ``/`` by ``loopline server``."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["mount_ui"]


def mount_ui(app: FastAPI) -> None:
    """Serve the built UI when the package carries it; the API works without it."""

"""Helpers for the runnable examples in the data SDK's docstrings (not part of the API).

>>> home = fresh_home()
>>> home.is_dir()
True
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

__all__ = ["fresh_home", "sample_csv"]


def fresh_home() -> Path:
    """Point loopline at a new, empty LOOPLINE_HOME for the rest of an example."""
    from loopline.config import Settings, get_settings, reset_settings
    from loopline.data import api

    home = Path(tempfile.mkdtemp(prefix="loopline-doc-"))
    reset_settings(get_settings().with_(home=home, tracking_uri=None, artifacts_uri=None))
    api.close()
    fluent = sys.modules.get("loopline.tracking.fluent")
    if fluent is not None:  # runs of the example go to the same store
        fluent.set_tracking_uri(None)
    assert isinstance(get_settings(), Settings)
    return home


def sample_csv(rows: int = 5, *, name: str = "measurements.csv", offset: float = 0.0) -> Path:
    """A small CSV file in a new temporary folder; its path."""
    folder = Path(tempfile.mkdtemp(prefix="loopline-doc-data-"))
    lines = ["id,length,species"]
    lines += [f"{i},{1.5 * i + offset},{'ab'[i % 2]}" for i in range(rows)]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path

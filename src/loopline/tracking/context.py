"""What a run records about where it ran: source, git state, Python and packages.

Computed once per process: asking git costs milliseconds, and a process that
creates a thousand runs runs the same code for all of them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["SYSTEM_TAG_PREFIX", "run_context_tags"]

SYSTEM_TAG_PREFIX = "loopline."
# Packages worth recording when the process has them imported.
_NOTABLE = (
    "loopline",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "xgboost",
    "lightgbm",
    "torch",
    "onnxruntime",
)
_IMPORT_NAMES = {"scikit-learn": "sklearn"}


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def _git_state(cwd: str) -> dict[str, str]:
    path = Path(cwd)
    commit = _git(["rev-parse", "HEAD"], path)
    if not commit:
        return {}
    status = _git(["status", "--porcelain", "--untracked-files=no"], path)
    state = {"git.commit": commit, "git.dirty": "true" if status else "false"}
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], path)
    if branch and branch != "HEAD":
        state["git.branch"] = branch
    return state


@functools.cache
def _static_tags() -> dict[str, str]:
    entry = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
    versions: dict[str, str] = {}
    for dist in _NOTABLE:
        if _IMPORT_NAMES.get(dist, dist) in sys.modules:
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return {
        "source.name": os.path.basename(entry),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": json.dumps(versions, sort_keys=True),
    }


def run_context_tags(user: str) -> dict[str, str]:
    """System tags for a new run (``loopline.*``)."""
    tags = {**_static_tags(), **_git_state(os.getcwd()), "user": user}
    return {SYSTEM_TAG_PREFIX + k: v for k, v in tags.items()}

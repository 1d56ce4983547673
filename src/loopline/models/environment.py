"""Environment capture: the packages a flavor needs, pinned, and the Python version.

>>> text = requirements_text(["numpy==2.0.0"], python_version="3.11.7", source="runs:/abc/model")
>>> print(text, end="")
# Python 3.11.7
# Recreates the environment of runs:/abc/model:
#   python3.11 -m venv .venv && .venv/bin/pip install -r requirements.txt
numpy==2.0.0
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from loopline._version import __version__
from loopline.models.flavors.base import pinned

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BASE_PACKAGES", "capture", "env", "python_version", "requirements_text"]

BASE_PACKAGES = ("numpy", "pandas", "pyarrow")
"""What every model needs to take its input, beside its flavor's own packages."""


def python_version() -> str:
    return platform.python_version()


def capture(packages: Iterable[str], *, extra: str | None = None) -> list[str]:
    """Pinned requirements: loopline (with the flavor's extra), the base and ``packages``.

    Packages that are not installed are left out (nothing here could have used them).
    ``a|b`` names alternatives (``xgboost|xgboost-cpu``): the first one installed.
    """
    loopline = f"loopline[{extra}]=={__version__}" if extra else f"loopline=={__version__}"
    seen: dict[str, str] = {}
    for entry in (*BASE_PACKAGES, *packages):
        for name in entry.split("|"):
            pin = pinned(name) if name not in seen else None
            if pin is not None:
                seen[name] = pin
                break
    return [loopline, *seen.values()]


def requirements_text(requirements: Iterable[str], *, python_version: str, source: str = "") -> str:
    """A requirements.txt that recreates a model's environment."""
    major_minor = ".".join(python_version.split(".")[:2]) or "3"
    lines = [f"# Python {python_version or 'unknown'}"]
    if source:
        lines.append(f"# Recreates the environment of {source}:")
        lines.append(
            f"#   python{major_minor} -m venv .venv && .venv/bin/pip install -r requirements.txt"
        )
    lines.extend(requirements)
    return "\n".join(lines) + "\n"


def env(uri: str | os.PathLike[str]) -> str:
    """A requirements.txt (as text) that recreates the environment of the model ``uri`` names.

    Flavor packages are pinned to the versions the model was saved with; the Python
    version is given as a comment. For a run's model only its YAML file is read.
    """
    from loopline.models.loading import read_model_metadata

    meta = read_model_metadata(uri)
    requirements = list(meta.requirements)
    for alternative in meta.alternatives.values():
        requirements += [r for r in alternative.get("requirements", []) if r not in requirements]
    return requirements_text(
        requirements, python_version=meta.python_version, source=os.fspath(uri)
    )

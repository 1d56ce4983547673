"""``loopline init``: a working ML repository in one command.

The scaffold holds a pipeline (load data -> validate -> train -> evaluate -> gate ->
register), ``loopline.toml``, data and model tests, CI workflows for GitHub Actions
and GitLab CI, and a small real dataset (scikit-learn's breast cancer data, split
into training and hold-out files), so its pipeline runs right after ``init``.

>>> project_name("My Churn_Model!")
'my-churn-model'
"""

from __future__ import annotations

import os
import re
from importlib import resources
from typing import TYPE_CHECKING

from loopline.errors import AlreadyExistsError, InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SCAFFOLD_FILES", "init_project", "project_name"]

# template (in loopline/ci/templates) -> where it goes in the new project
SCAFFOLD_FILES: dict[str, str] = {
    "loopline.toml": "loopline.toml",
    "pipeline.py": "pipeline.py",
    "README.md": "README.md",
    "gitignore": ".gitignore",
    "tests/test_data.py": "tests/test_data.py",
    "tests/test_model.py": "tests/test_model.py",
    "github/loopline.yml": ".github/workflows/loopline.yml",
    "gitlab-ci.yml": ".gitlab-ci.yml",
}
DATA_FILES = ("data/train.csv", "data/holdout.csv")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def project_name(text: str) -> str:
    """A name usable for datasets, models and deployments, derived from ``text``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]


def init_project(directory: Path, name: str | None = None, *, force: bool = False) -> list[Path]:
    """Write the scaffold into ``directory`` (created if needed); returns the files written.

    Existing files are never overwritten unless ``force``: nothing is written when
    one of the scaffold's files is already there.
    """
    directory = directory.resolve()
    name = name if name is not None else project_name(directory.name)
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"{name!r} cannot name a project",
            hint="use lowercase letters, digits and '-' (e.g. --name churn)",
        )
    targets = [*SCAFFOLD_FILES.values(), *DATA_FILES]
    clashes = [t for t in targets if (directory / t).exists()]
    if clashes and not force:
        raise AlreadyExistsError(
            f"{directory} already has {', '.join(clashes)}",
            hint="pick an empty directory, or pass --force to overwrite these files",
        )
    train_csv, holdout_csv = _bundled_data()
    root = resources.files("loopline.ci") / "templates"
    written: list[Path] = []
    for template, target in SCAFFOLD_FILES.items():
        text = (root / template).read_text(encoding="utf-8").replace("__NAME__", name)
        written.append(_write(directory / target, text))
    written.append(_write(directory / DATA_FILES[0], train_csv))
    written.append(_write(directory / DATA_FILES[1], holdout_csv))
    return written


def _bundled_data() -> tuple[str, str]:
    """Training and hold-out CSV text of scikit-learn's breast cancer data (70/30, seeded)."""
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
    except ImportError:
        # The scaffold's pipeline trains a scikit-learn model on this data.
        raise MissingDependencyError("scikit-learn", "sklearn") from None
    frame = load_breast_cancer(as_frame=True).frame
    # Feature names with spaces are awkward in filters and serving payloads.
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    train, holdout = train_test_split(
        frame, test_size=0.3, random_state=0, stratify=frame["target"]
    )
    return train.to_csv(index=False), holdout.to_csv(index=False)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would make the project's files private.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

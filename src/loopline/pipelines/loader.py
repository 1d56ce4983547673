"""``FILE.py[:PIPELINE]``: load a pipeline from a file for the CLI and the scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopline.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from loopline.pipelines.core import Pipeline

__all__ = ["load_pipeline", "split_target"]


def split_target(target: str) -> tuple[Path, str | None]:
    """``flow.py:train`` -> (path, "train"); ``flow.py`` -> (path, None).

    >>> split_target("flows/train.py:main")
    (PosixPath('flows/train.py'), 'main')
    """
    file, sep, name = target.rpartition(":")
    if not sep or not file.endswith(".py"):
        file, name = target, ""
    return Path(file), name or None


def load_pipeline(target: str) -> Pipeline:
    """The pipeline ``target`` names; a file with one pipeline needs no name."""
    from loopline.pipelines.core import Pipeline
    from loopline.pipelines.worker import import_file

    path, name = split_target(target)
    if not path.is_file():
        raise NotFoundError(f"no such pipeline file: {path}", hint="give FILE.py[:PIPELINE]")
    module = import_file(str(path.resolve()))
    found = {
        getattr(obj, "name", key): obj
        for key, obj in vars(module).items()
        if isinstance(obj, Pipeline)
    }
    if name is not None:
        if name in found:
            return found[name]
        obj = getattr(module, name, None)
        if isinstance(obj, Pipeline):
            return obj
        raise NotFoundError(
            f"{path} has no pipeline {name!r}",
            hint=f"pipelines in it: {', '.join(sorted(found)) or 'none'}",
        )
    if len(found) != 1:
        raise InvalidArgumentError(
            f"{path} defines {len(found)} pipelines ({', '.join(sorted(found)) or 'none'})",
            hint="name one: FILE.py:PIPELINE",
        )
    return next(iter(found.values()))

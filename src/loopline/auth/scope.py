"""Which projects a request touches: from its path, its query and its JSON body.

A route names its objects by id (runs, experiments), by project name
(``/api/v1/projects/NAME/...``) or by names inside a project (models, datasets:
the ``X-Loopline-Project`` header, ``default`` when absent). The permission check
requires the caller's role in every project the request touches, so a member of
one project cannot reach another project's runs by id.

>>> sorted(ids_in_body("/api/2.0/mlflow/runs/log-batch", {"run_id": "a", "metrics": []}).runs)
['a']
>>> sorted(ids_in_body("/api/v1/writes", {"metrics": [["r1", "loss", 1, 0, 0]], "new_runs": [{"run_id": "r2", "experiment_id": "3"}]}).runs)
['r1', 'r2']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import sqlalchemy as sa

from loopline.store.metadata.schema import experiments, projects, runs

if TYPE_CHECKING:
    from loopline.store.metadata import Database

__all__ = ["Ids", "ids_in_body", "ids_in_path", "ids_in_query", "projects_of"]

_RUN_KEYS = ("run_id", "run_uuid")
_EXPERIMENT_KEYS = ("experiment_id",)
_ROW_LISTS = ("params", "tags", "metrics", "deleted_tags")
_PATHS = (
    (re.compile(r"/api/v1/runs/([^/]+)(?:/.*)?"), "run"),
    (re.compile(r"/api/v1/experiments/(\d+)(?:/.*)?"), "experiment"),
    (re.compile(r"/(?:ajax-)?api/2\.0/mlflow-artifacts/artifacts/(\d+)(?:/.*)?"), "experiment"),
    (re.compile(r"/api/v1/projects/([^/]+)(?:/.*)?"), "project"),
)
_MAX_IDS = 10_000


@dataclass(slots=True)
class Ids:
    """Object ids found in a request."""

    runs: set[str] = field(default_factory=set)
    experiments: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)

    def update(self, other: Ids) -> None:
        self.runs |= other.runs
        self.experiments |= other.experiments
        self.projects |= other.projects

    def __bool__(self) -> bool:
        return bool(self.runs or self.experiments or self.projects)


def ids_in_path(path: str) -> Ids:
    """
    >>> ids_in_path("/api/v1/experiments/7/tags").experiments
    {'7'}
    """
    found = Ids()
    for pattern, kind in _PATHS:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        value = match.group(1)
        if kind == "run" and value != "search":
            found.runs.add(value)
        elif kind == "experiment":
            found.experiments.add(value)
        elif kind == "project":
            found.projects.add(value)
    return found


def ids_in_query(query: bytes) -> Ids:
    """
    >>> sorted(ids_in_query(b"run_id=abc&experiment_ids=1&experiment_ids=2&path=3/x/artifacts").experiments)
    ['1', '2', '3']
    """
    found = Ids()
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=False):
        if key in _RUN_KEYS:
            found.runs.add(value)
        elif key in ("experiment_id", "experiment_ids"):
            found.experiments.add(value)
        elif key == "path":  # the MLflow artifact listing: <experiment_id>/<run_id>/...
            head = value.lstrip("/").split("/", 1)[0]
            if head.isdigit():
                found.experiments.add(head)
    return found


def _add(target: set[str], value: Any) -> None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and len(target) < _MAX_IDS:
        target.add(str(value))


def ids_in_body(path: str, body: Any) -> Ids:
    """Run and experiment ids in a JSON body (top level, lists of objects, write rows)."""
    found = Ids()
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict):
            _scan_object(item, found)
    if isinstance(body, dict) and path.endswith("/writes"):
        for key in _ROW_LISTS:
            rows = body.get(key)
            if isinstance(rows, list):
                for row in rows:
                    if isinstance(row, list) and row:
                        _add(found.runs, row[0])
    return found


def _scan_object(obj: dict[str, Any], found: Ids) -> None:
    for key in _RUN_KEYS:
        _add(found.runs, obj.get(key))
    for key in _EXPERIMENT_KEYS:
        _add(found.experiments, obj.get(key))
    listed = obj.get("experiment_ids")
    if isinstance(listed, list):
        for value in listed:
            _add(found.experiments, value)
    for value in obj.values():
        if isinstance(value, list):
            for inner in value:
                if isinstance(inner, dict):
                    for key in (*_RUN_KEYS, *_EXPERIMENT_KEYS):
                        _add(found.runs if key in _RUN_KEYS else found.experiments, inner.get(key))


def projects_of(db: Database, ids: Ids) -> set[str]:
    """The projects owning these objects; unknown ids are ignored (the route says 404)."""
    names = set(ids.projects)
    exp_ids = [int(e) for e in ids.experiments if e.isdigit() and len(e) < 12]
    with db.read() as conn:
        if ids.runs:
            names.update(
                conn.execute(
                    sa.select(projects.c.name)
                    .distinct()
                    .join(experiments, experiments.c.project_id == projects.c.id)
                    .join(runs, runs.c.experiment_id == experiments.c.id)
                    .where(runs.c.id.in_(list(ids.runs)))
                ).scalars()
            )
        if exp_ids:
            names.update(
                conn.execute(
                    sa.select(projects.c.name)
                    .distinct()
                    .join(experiments, experiments.c.project_id == projects.c.id)
                    .where(experiments.c.id.in_(exp_ids))
                ).scalars()
            )
    return names

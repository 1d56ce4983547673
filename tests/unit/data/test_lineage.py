"""Lineage: runs that read a version, models built from it, versions a run read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

import loopline
import loopline.data as data
from loopline.errors import InvalidArgumentError, InvalidStateError
from loopline.store.metadata.schema import model_versions, registered_models

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.data.service import DataService


def test_get_inside_a_run_records_an_input_edge(tree: Path) -> None:
    data.add(tree, "tree")
    outside = data.get("tree@1")  # no run: nothing recorded
    assert data.lineage(outside).runs == []
    with loopline.start_run() as run:
        data.get("tree", context="training")
        data.get("tree@1")  # the same version again: one edge
    trace = data.lineage("tree@1")
    assert [(r.run_id, r.context) for r in trace.runs] == [(run.info.run_id, "training")]
    assert data.lineage(run_id=run.info.run_id).datasets == [("tree@1", "training")]


def test_log_input_sets_the_context_of_an_implicit_edge(tree: Path) -> None:
    data.add(tree, "tree")
    with loopline.start_run() as run:
        data.get("tree")
        data.log_input("tree@1", context="evaluation")
    assert data.lineage(run_id=run.info.run_id).datasets == [("tree@1", "evaluation")]


def test_log_input_needs_a_run(tree: Path) -> None:
    data.add(tree, "tree")
    with pytest.raises(InvalidStateError, match="no run is active"):
        data.log_input("tree@1")
    data.log_input("tree@1", run_id="0123456789abcdef", context="offline")
    assert data.lineage(run_id="0123456789abcdef").datasets == [("tree@1", "offline")]


def test_models_built_from_a_run_that_read_the_version(tree: Path, service: DataService) -> None:
    data.add(tree, "tree")
    data.log_input("tree@1", run_id="run-a", context="training")
    with service.db.write() as conn:
        model_id = conn.execute(
            sa.insert(registered_models)
            .values(project_id=1, name="classifier", created_at=0, updated_at=0)
            .returning(registered_models.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(model_versions).values(
                model_id=model_id, version=3, run_id="run-a", created_at=0, updated_at=0
            )
        )
    trace = data.lineage("tree@1")
    assert [(m.model, m.version, m.run_id) for m in trace.models] == [("classifier", 3, "run-a")]


def test_lineage_needs_exactly_one_subject() -> None:
    with pytest.raises(InvalidArgumentError):
        data.lineage()
    with pytest.raises(InvalidArgumentError):
        data.lineage("x@1", run_id="r")

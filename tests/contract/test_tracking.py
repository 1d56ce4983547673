"""The tracking service's contract, on SQLite and on PostgreSQL.

Experiments, run writes (atomic, idempotent batches), metrics including NaN and
infinities, limits, artifacts, events and purging, through
:class:`~loopline.tracking.service.TrackingService` as the embedded SDK and the
server use it.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    LimitExceededError,
    NotFoundError,
    UnsafePathError,
)
from loopline.store.blobs.local import LocalBlobStore
from loopline.tracking.entities import NewRun, RunUpdate, RunWrites
from loopline.tracking.service import LIMITS, TrackingService
from loopline.tracking.store import ParamConflictError, now_ms

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.store.metadata import Database

UNSAFE_PATHS = ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a/\x00b.txt"]


@pytest.fixture
def svc(db: Database, tmp_path: Path) -> Iterator[TrackingService]:
    blobs = LocalBlobStore(tmp_path / "blobs")
    yield TrackingService(db, blobs, user="ada")
    blobs.close()


def write(svc: TrackingService, **fields: Any) -> RunWrites:
    batch = RunWrites(batch_id=uuid.uuid4().hex, **fields)
    svc.write(batch)
    return batch


def new_run(
    svc: TrackingService, experiment_id: str = "0", *, parent: str | None = None, name: str = "r"
) -> str:
    run_id = uuid.uuid4().hex
    run = NewRun(run_id, experiment_id, name, now_ms(), "ada", parent_run_id=parent)
    write(svc, new_runs=[run])
    return run_id


def count(svc: TrackingService, table: str, run_id: str | None = None) -> int:
    query = f"SELECT count(*) FROM {table}" + (" WHERE run_id = :r" if run_id else "")
    with svc.db.read() as conn:
        return int(conn.execute(sa.text(query), {"r": run_id}).scalar_one())


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# -- experiments ----------------------------------------------------------------------
def test_create_get_and_list_experiments(svc: TrackingService) -> None:
    exp_id = svc.create_experiment("churn", description="why users leave", tags={"team": "ml"})
    exp = svc.get_experiment(exp_id)
    assert (exp.name, exp.description, exp.tags, exp.lifecycle_stage) == (
        "churn",
        "why users leave",
        {"team": "ml"},
        "active",
    )
    assert exp.project == "default"
    assert exp.creation_time > 0
    found = svc.get_experiment_by_name("churn")
    assert found is not None
    assert found.experiment_id == exp_id
    assert svc.get_experiment_by_name("nope") is None
    assert [e.name for e in svc.list_experiments()] == ["Default", "churn"]
    assert [e.name for e in svc.list_experiments(name_like="ch%")] == ["churn"]


def test_duplicate_experiment_name_is_refused(svc: TrackingService) -> None:
    exp_id = svc.create_experiment("dup")
    with pytest.raises(AlreadyExistsError, match=f"'dup' already exists with id {exp_id}"):
        svc.create_experiment("dup")
    other = svc.create_experiment("other")
    with pytest.raises(AlreadyExistsError):
        svc.update_experiment(other, name="dup")


@pytest.mark.parametrize("bad_id", ["999", "abc", ""])
def test_unknown_experiment_is_not_found(svc: TrackingService, bad_id: str) -> None:
    with pytest.raises(NotFoundError):
        svc.get_experiment(bad_id)
    with pytest.raises(NotFoundError):
        svc.delete_experiment(bad_id)
    with pytest.raises(NotFoundError):
        svc.set_experiment_tag(bad_id, "k", "v")
    with pytest.raises(NotFoundError):
        new_run(svc, bad_id)


def test_experiment_name_limits(svc: TrackingService) -> None:
    with pytest.raises(InvalidArgumentError):
        svc.create_experiment("   ")
    too_long = "x" * (LIMITS.experiment_name + 1)
    with pytest.raises(LimitExceededError, match=f"the limit is {LIMITS.experiment_name}"):
        svc.create_experiment(too_long)


def test_rename_and_describe_experiment(svc: TrackingService) -> None:
    exp_id = svc.create_experiment("old")
    svc.update_experiment(exp_id, name="new", description="d")
    exp = svc.get_experiment(exp_id)
    assert (exp.name, exp.description) == ("new", "d")


def test_experiment_tags_set_overwrite_delete(svc: TrackingService) -> None:
    exp_id = svc.create_experiment("tagged")
    svc.set_experiment_tag(exp_id, "a", "1")
    svc.set_experiment_tag(exp_id, "b", "2")
    svc.set_experiment_tag(exp_id, "a", "3")
    svc.set_experiment_tag(exp_id, "b", None)
    assert svc.get_experiment(exp_id).tags == {"a": "3"}


def test_default_experiment_cannot_be_deleted(svc: TrackingService) -> None:
    with pytest.raises(InvalidArgumentError, match="default experiment"):
        svc.delete_experiment("0")
    assert svc.get_experiment("0").lifecycle_stage == "active"


def test_delete_and_restore_cascade_to_runs(svc: TrackingService) -> None:
    exp_id = svc.create_experiment("cascade")
    kept, alone = new_run(svc, exp_id), new_run(svc, exp_id)
    elsewhere = new_run(svc)
    svc.delete_run(alone)  # deleted on its own, before the experiment

    svc.delete_experiment(exp_id)
    assert svc.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert svc.get_run(kept).info.lifecycle_stage == "deleted"
    assert svc.get_run(elsewhere).info.lifecycle_stage == "active"
    assert [e.name for e in svc.list_experiments(view="deleted")] == ["cascade"]
    assert "cascade" not in [e.name for e in svc.list_experiments()]
    with pytest.raises(InvalidStateError):
        new_run(svc, exp_id)
    with pytest.raises(InvalidStateError):
        write(svc, metrics=[(kept, "m", 1.0, 1, 0)])
    svc.delete_experiment(exp_id)  # again: nothing changes

    svc.restore_experiment(exp_id)
    assert svc.get_experiment(exp_id).lifecycle_stage == "active"
    assert svc.get_run(kept).info.lifecycle_stage == "active"
    # A run deleted on its own stays deleted when its experiment comes back.
    assert svc.get_run(alone).info.lifecycle_stage == "deleted"


# -- runs and their writes ------------------------------------------------------------
def test_new_runs_are_stored_with_their_info(svc: TrackingService) -> None:
    parent = new_run(svc, name="parent")
    child = new_run(svc, parent=parent, name="child")
    run = svc.get_run(child)
    info = run.info
    assert (info.run_id, info.experiment_id, info.run_name, info.status) == (
        child,
        "0",
        "child",
        "RUNNING",
    )
    assert (info.user_id, info.parent_run_id, info.end_time) == ("ada", parent, None)
    assert info.artifact_uri == f"runs:/{child}"
    assert info.start_time > 0
    assert (run.data.metrics, run.data.params, run.data.tags) == ({}, {}, {})


def test_run_id_already_taken(svc: TrackingService) -> None:
    run_id = new_run(svc)
    with pytest.raises(AlreadyExistsError):
        write(svc, new_runs=[NewRun(run_id, "0", "again", now_ms(), "ada")])


def test_params_are_immutable(svc: TrackingService) -> None:
    run_id = new_run(svc)
    write(svc, params=[(run_id, "lr", "0.1"), (run_id, "lr", "0.1")])
    write(svc, params=[(run_id, "lr", "0.1"), (run_id, "depth", "3")])
    with pytest.raises(ParamConflictError, match=r"'lr'.*'0\.1'.*'0\.2'") as caught:
        write(svc, params=[(run_id, "lr", "0.2")])
    assert caught.value.conflicts == [(run_id, "lr")]
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ParamConflictError):  # a conflict inside one batch
        write(svc, params=[(run_id, "seed", "1"), (run_id, "seed", "2")])
    assert svc.get_run(run_id).data.params == {"lr": "0.1", "depth": "3"}


def test_a_refused_batch_stores_nothing(svc: TrackingService) -> None:
    run_id = new_run(svc)
    write(svc, params=[(run_id, "lr", "0.1")])
    batch = RunWrites(
        batch_id=uuid.uuid4().hex,
        new_runs=[NewRun(uuid.uuid4().hex, "0", "fresh", now_ms(), "ada")],
        params=[(run_id, "fresh", "yes"), (run_id, "lr", "0.5")],
        tags=[(run_id, "t", "v")],
        metrics=[(run_id, "loss", 1.0, now_ms(), 0)],
        updates=[RunUpdate(run_id, status="FINISHED", end_time=now_ms())],
    )
    with pytest.raises(ParamConflictError):
        svc.write(batch)
    run = svc.get_run(run_id)
    assert (run.data.params, run.data.tags, run.data.metrics) == ({"lr": "0.1"}, {}, {})
    assert run.info.status == "RUNNING"
    assert count(svc, "metrics") == 0
    with pytest.raises(NotFoundError):
        svc.get_run(batch.new_runs[0].run_id)
    # The refused batch was not recorded as applied: fixed, the same id goes through.
    batch.params = [(run_id, "fresh", "yes")]
    svc.write(batch)
    assert svc.get_run(run_id).data.params == {"lr": "0.1", "fresh": "yes"}


def test_tags_set_overwrite_and_delete(svc: TrackingService) -> None:
    run_id = new_run(svc)
    write(svc, tags=[(run_id, "a", "1"), (run_id, "b", "2"), (run_id, "a", "3")])
    assert svc.get_run(run_id).data.tags == {"a": "3", "b": "2"}
    write(svc, deleted_tags=[(run_id, "b"), (run_id, "never-set")])
    assert svc.get_run(run_id).data.tags == {"a": "3"}
    # Tags are applied before deletions within one batch.
    write(svc, tags=[(run_id, "c", "x")], deleted_tags=[(run_id, "c")])
    assert svc.get_run(run_id).data.tags == {"a": "3"}


def test_metrics_keep_nan_and_infinities(svc: TrackingService) -> None:
    run_id = new_run(svc)
    values = [1.5, math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
    ts = now_ms()
    write(svc, metrics=[(run_id, "v", v, ts + i, i) for i, v in enumerate(values)])
    history = svc.metric_history(run_id, "v")
    assert [m.step for m in history] == list(range(len(values)))
    assert all(same_float(m.value, v) for m, v in zip(history, values, strict=True))
    assert [m.timestamp for m in history] == [ts + i for i in range(len(values))]
    assert same_float(svc.get_run(run_id).data.metrics["v"], values[-1])
    for last in (math.nan, math.inf, -math.inf):
        key = f"last-{last}"
        write(svc, metrics=[(run_id, key, 7.0, ts, 0), (run_id, key, last, ts, 1)])
        got = svc.get_run(run_id).data.metrics[key]
        assert same_float(got, last), (got, last)
        write(svc, metrics=[(run_id, key, 0.0, ts, 0)])  # an earlier step: not the latest
        assert same_float(svc.get_run(run_id).data.metrics[key], last)
        assert same_float(svc.metric_history(run_id, key)[-1].value, last)


def test_latest_metric_is_the_highest_step_then_timestamp(svc: TrackingService) -> None:
    run_id = new_run(svc)
    write(
        svc,
        metrics=[
            (run_id, "m", 1.0, 100, 5),
            (run_id, "m", 2.0, 500, 3),  # newer but an earlier step
            (run_id, "m", 3.0, 50, 5),  # same step, older
        ],
    )
    assert svc.get_run(run_id).data.metrics == {"m": 1.0}
    write(svc, metrics=[(run_id, "m", 4.0, 10_000, 4)])
    assert svc.get_run(run_id).data.metrics == {"m": 1.0}
    write(svc, metrics=[(run_id, "m", 5.0, 101, 5)])
    assert svc.get_run(run_id).data.metrics == {"m": 5.0}
    write(svc, metrics=[(run_id, "m", 6.0, 1, 6)])
    assert svc.get_run(run_id).data.metrics == {"m": 6.0}
    assert len(svc.metric_history(run_id, "m")) == 6
    assert svc.store.metric_keys(run_id) == ["m"]
    # In one batch, of points with the same step and timestamp the one logged last wins,
    # per key and per run.
    other = new_run(svc)
    write(
        svc,
        metrics=[
            (run_id, "m", 7.0, 1, 6),
            (other, "m", 1.0, 5, 2),
            (run_id, "m", 8.0, 1, 6),
            (run_id, "n", 9.0, 3, 0),
            (other, "m", 2.0, 4, 2),
        ],
    )
    assert svc.get_run(run_id).data.metrics == {"m": 8.0, "n": 9.0}
    assert svc.get_run(other).data.metrics == {"m": 1.0}


def test_a_batch_applied_twice_is_stored_once(svc: TrackingService) -> None:
    run_id = uuid.uuid4().hex
    batch = RunWrites(
        batch_id=uuid.uuid4().hex,
        new_runs=[NewRun(run_id, "0", "r", now_ms(), "ada")],
        params=[(run_id, "p", "1")],
        metrics=[(run_id, "m", float(i), now_ms(), i) for i in range(10)],
    )
    svc.write(batch)
    svc.write(batch)  # a retry after a lost reply
    svc.write(RunWrites.from_dict(batch.to_dict()))  # the same batch over the wire
    assert len(svc.metric_history(run_id, "m")) == 10
    assert count(svc, "runs", None) == 1


def test_run_updates_finish_and_resume(svc: TrackingService) -> None:
    run_id = new_run(svc)
    write(svc, updates=[RunUpdate(run_id, status="FINISHED", end_time=now_ms())])
    info = svc.get_run(run_id).info
    assert info.status == "FINISHED"
    assert info.end_time is not None
    write(svc, updates=[RunUpdate(run_id, status="RUNNING", run_name="again")])
    info = svc.get_run(run_id).info
    assert (info.status, info.end_time, info.run_name) == ("RUNNING", None, "again")
    with pytest.raises(InvalidArgumentError, match="unknown run status"):
        write(svc, updates=[RunUpdate(run_id, status="DONE")])


def test_logging_to_a_deleted_run_is_refused(svc: TrackingService) -> None:
    run_id = new_run(svc)
    svc.delete_run(run_id)
    assert svc.get_run(run_id).info.lifecycle_stage == "deleted"
    for fields in (
        {"metrics": [(run_id, "m", 1.0, 1, 0)]},
        {"params": [(run_id, "p", "1")]},
        {"tags": [(run_id, "t", "1")]},
        {"updates": [RunUpdate(run_id, status="FINISHED")]},
    ):
        with pytest.raises(InvalidStateError, match="deleted"):
            write(svc, **fields)
    with pytest.raises(InvalidStateError):
        svc.put_artifact(run_id, "a.txt", b"x")
    svc.restore_run(run_id)
    write(svc, metrics=[(run_id, "m", 1.0, 1, 0)])
    assert svc.get_run(run_id).data.metrics == {"m": 1.0}


def test_unknown_run_is_not_found(svc: TrackingService) -> None:
    ghost = uuid.uuid4().hex
    with pytest.raises(NotFoundError):
        svc.get_run(ghost)
    with pytest.raises(NotFoundError):
        svc.metric_history(ghost, "m")
    with pytest.raises(NotFoundError):
        svc.delete_run(ghost)
    with pytest.raises(NotFoundError):
        write(svc, metrics=[(ghost, "m", 1.0, 1, 0)])
    with pytest.raises(NotFoundError):
        svc.put_artifact(ghost, "a.txt", b"x")
    with pytest.raises(NotFoundError):
        svc.list_artifacts(ghost)


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({"metrics": [("RUN", "k" * (LIMITS.key + 1), 1.0, 1, 0)]}, LIMITS.key),
        ({"params": [("RUN", "k" * (LIMITS.key + 1), "v")]}, LIMITS.key),
        ({"tags": [("RUN", "k" * (LIMITS.key + 1), "v")]}, LIMITS.key),
        ({"params": [("RUN", "p", "v" * (LIMITS.param_value + 1))]}, LIMITS.param_value),
        ({"tags": [("RUN", "t", "v" * (LIMITS.tag_value + 1))]}, LIMITS.tag_value),
        (
            {"metrics": [("RUN", "m", 1.0, 1, i) for i in range(LIMITS.batch_metrics + 1)]},
            LIMITS.batch_metrics,
        ),
        (
            {"params": [("RUN", f"p{i}", "v") for i in range(LIMITS.batch_params + 1)]},
            LIMITS.batch_params,
        ),
        (
            {"tags": [("RUN", f"t{i}", "v") for i in range(LIMITS.batch_tags + 1)]},
            LIMITS.batch_tags,
        ),
    ],
    ids=[
        "metric-key",
        "param-key",
        "tag-key",
        "param-value",
        "tag-value",
        "batch-metrics",
        "batch-params",
        "batch-tags",
    ],
)
def test_oversized_input_states_the_limit(
    svc: TrackingService, fields: dict[str, list[tuple[Any, ...]]], limit: int
) -> None:
    run_id = new_run(svc)
    rows = {name: [(run_id, *row[1:]) for row in value] for name, value in fields.items()}
    with pytest.raises(LimitExceededError, match=f"the limit is {limit}") as caught:
        write(svc, **rows)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert count(svc, "metrics") == count(svc, "params") == count(svc, "tags") == 0


def test_keys_at_the_limit_and_odd_characters_are_fine(svc: TrackingService) -> None:
    run_id = new_run(svc)
    key = "k" * LIMITS.key
    write(
        svc,
        metrics=[(run_id, key, 1.0, 1, 0), (run_id, "val/loss (ü)", 2.0, 1, 0)],
        params=[(run_id, key, "v" * LIMITS.param_value)],
    )
    assert set(svc.get_run(run_id).data.metrics) == {key, "val/loss (ü)"}
    with pytest.raises(InvalidArgumentError, match="control characters"):
        write(svc, metrics=[(run_id, "a\nb", 1.0, 1, 0)])


# -- artifacts ----------------------------------------------------------------------
def test_artifacts_put_list_read_download(svc: TrackingService, tmp_path: Path) -> None:
    run_id = new_run(svc)
    local = tmp_path / "model.pkl"
    local.write_bytes(b"weights" * 1000)
    svc.put_artifact(run_id, "model/model.pkl", local)
    svc.put_artifact(run_id, "model/MLmodel", b"flavors: {}\n")
    svc.put_artifact(run_id, "plots/roc.png", b"\x89PNG")
    svc.put_artifact(run_id, "notes.txt", b"hello")
    svc.put_artifact(run_id, "./notes.txt", b"hello again")  # replaces, normalised path

    root = svc.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in root] == [
        ("model", True),
        ("notes.txt", False),
        ("plots", True),
    ]
    assert root[1].size == len(b"hello again")
    inner = svc.list_artifacts(run_id, "model")
    assert [(f.path, f.is_dir, f.size) for f in inner] == [
        ("model/MLmodel", False, 12),
        ("model/model.pkl", False, 7000),
    ]
    assert svc.list_artifacts(run_id, "nothing-here") == []
    assert svc.read_artifact(run_id, "notes.txt") == b"hello again"
    assert svc.read_artifact(run_id, "model/model.pkl") == local.read_bytes()

    dest = svc.download_artifacts(run_id, "model", tmp_path / "out")
    assert dest == tmp_path / "out" / "model"
    assert sorted(p.name for p in dest.iterdir()) == ["MLmodel", "model.pkl"]
    assert (dest / "model.pkl").read_bytes() == local.read_bytes()
    everything = svc.download_artifacts(run_id, "", tmp_path / "all")
    files = sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*.*"))
    assert files == ["model/model.pkl", "notes.txt", "plots/roc.png"]
    single = svc.download_artifacts(run_id, "plots/roc.png", tmp_path / "one")
    assert single.read_bytes() == b"\x89PNG"

    with pytest.raises(NotFoundError):
        svc.read_artifact(run_id, "missing.txt")
    with pytest.raises(NotFoundError):
        svc.download_artifacts(run_id, "missing", tmp_path / "none")


def test_artifacts_with_the_same_content_are_stored_once(svc: TrackingService) -> None:
    first, second = new_run(svc), new_run(svc)
    svc.put_artifact(first, "a.bin", b"same bytes")
    svc.put_artifact(second, "b/c.bin", b"same bytes")
    assert len(list(svc.blobs.iter_digests())) == 1
    assert svc.read_artifact(second, "b/c.bin") == b"same bytes"


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_artifact_paths_are_refused(svc: TrackingService, tmp_path: Path, path: str) -> None:
    run_id = new_run(svc)
    with pytest.raises(UnsafePathError):
        svc.put_artifact(run_id, path, b"x")
    with pytest.raises(UnsafePathError):
        svc.list_artifacts(run_id, path)
    with pytest.raises(UnsafePathError):
        svc.read_artifact(run_id, path)
    with pytest.raises(UnsafePathError):
        svc.download_artifacts(run_id, path, tmp_path / "dl")
    assert svc.list_artifacts(run_id) == []
    assert not (tmp_path / "escape.txt").exists()


# -- events -------------------------------------------------------------------------
def test_events_record_changes_in_order(svc: TrackingService) -> None:
    start = max((e.id for e in svc.events()), default=0)
    exp_id = svc.create_experiment("evented")
    run_id = new_run(svc, exp_id)
    write(svc, updates=[RunUpdate(run_id, status="FINISHED", end_time=now_ms())])
    other = new_run(svc)
    write(svc, updates=[RunUpdate(other, status="FAILED", end_time=now_ms())])

    events = svc.events(after_id=start)
    assert [e.kind for e in events] == ["experiment.created", "run.finished", "run.finished"]
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    created, finished, failed = events
    assert (created.entity_type, created.entity_id, created.payload) == (
        "experiment",
        exp_id,
        {"name": "evented"},
    )
    assert created.actor == "ada"
    assert (finished.entity_id, finished.payload) == (
        run_id,
        {"status": "FINISHED", "experiment_id": exp_id},
    )
    assert failed.payload["status"] == "FAILED"
    assert all(e.created_at > 0 for e in events)

    assert [e.id for e in svc.events(after_id=created.id)] == ids[1:]
    assert [e.kind for e in svc.events(after_id=start, kinds=["run.*"])] == ["run.finished"] * 2
    assert [e.kind for e in svc.events(after_id=start, kinds=["experiment.created"])] == [
        "experiment.created"
    ]
    assert svc.events(after_id=start, kinds=["run"]) == []  # exact unless it ends in *
    assert len(svc.events(after_id=start, limit=2)) == 2
    assert svc.events(after_id=ids[-1]) == []


def test_events_name_the_acting_user(svc: TrackingService) -> None:
    start = max((e.id for e in svc.events()), default=0)
    svc.for_user("grace").create_experiment("graces")
    assert [e.actor for e in svc.events(after_id=start)] == ["grace"]
    assert svc.user == "ada"


# -- purge ----------------------------------------------------------------------------
def test_purge_deleted_runs_removes_their_rows(svc: TrackingService) -> None:
    gone, kept = new_run(svc), new_run(svc)
    for run_id in (gone, kept):
        write(
            svc,
            metrics=[(run_id, "m", 1.0, 1, i) for i in range(5)],
            params=[(run_id, "p", "1")],
            tags=[(run_id, "t", "1")],
        )
        svc.put_artifact(run_id, "a.txt", run_id.encode())
    assert svc.store.purge_deleted_runs() == []
    svc.delete_run(gone)
    assert svc.store.purge_deleted_runs(older_than_ms=0) == []  # deleted too recently
    assert svc.store.purge_deleted_runs() == [gone]
    with pytest.raises(NotFoundError):
        svc.get_run(gone)
    for table in ("metrics", "latest_metrics", "params", "tags"):
        assert count(svc, table, gone) == 0, table
        assert count(svc, table, kept) > 0, table
    assert svc.store.artifact_files(f"runs/{gone}") == []
    assert len(svc.store.artifact_files(f"runs/{kept}")) == 1
    # The blob itself goes with garbage collection, once nothing references it.
    assert len(svc.store.referenced_digests()) == 1

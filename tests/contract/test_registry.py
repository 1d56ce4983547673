"""The model registry's contract, on SQLite and on PostgreSQL.

Registered models, immutable versions, aliases with history, reviews, lineage,
comparison, logged models, downloads with digest checks, garbage collection and
events, through :class:`~loopline.registry.service.RegistryService` as the embedded
SDK and the server use it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from loopline.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
)
from loopline.events import read_events
from loopline.registry.client import RegistryClient
from loopline.registry.gc import registry_references
from loopline.registry.service import RegistryService
from loopline.store.blobs.local import LocalBlobStore
from loopline.store.gc import collect
from loopline.store.metadata.schema import artifacts, dataset_versions, datasets, lineage
from loopline.tracking.entities import NewRun, RunWrites
from loopline.tracking.service import TrackingService
from loopline.tracking.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.store.metadata import Database

MODEL_YAML = (
    "flavor: sklearn\n"
    "signature:\n  inputs: [{name: x, dtype: float64}]\n  outputs: [{name: y, dtype: int64}]\n"
)


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[LocalBlobStore]:
    store = LocalBlobStore(tmp_path / "blobs")
    yield store
    store.close()


@pytest.fixture
def tracking(db: Database, blobs: LocalBlobStore) -> TrackingService:
    return TrackingService(db, blobs, user="ada")


@pytest.fixture
def reg(db: Database, blobs: LocalBlobStore) -> RegistryService:
    return RegistryService(db, blobs, user="ada")


def model_run(
    tracking: TrackingService,
    *,
    weights: bytes = b"weights-1",
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
) -> str:
    """A finished run with a model under ``model/`` (and a stray file outside it)."""
    run_id = uuid.uuid4().hex
    tracking.write(
        RunWrites(
            batch_id=uuid.uuid4().hex,
            new_runs=[NewRun(run_id, "0", "train", now_ms(), "ada")],
            params=[(run_id, k, v) for k, v in (params or {}).items()],
            metrics=[(run_id, k, v, now_ms(), 0) for k, v in (metrics or {}).items()],
        )
    )
    tracking.put_artifact(run_id, "model/loopline-model.yaml", MODEL_YAML.encode())
    tracking.put_artifact(run_id, "model/weights.bin", weights)
    tracking.put_artifact(run_id, "model/sub/extra.txt", b"extra")
    tracking.put_artifact(run_id, "notes.txt", b"not part of the model")
    return run_id


def kinds(reg: RegistryService, after: int = 0) -> list[str]:
    return [e.kind for e in read_events(reg.db, after_id=after)]


def last_event_id(reg: RegistryService) -> int:
    found = read_events(reg.db, after_id=0, limit=100_000)
    return found[-1].id if found else 0


# -- registration ---------------------------------------------------------------------
def test_register_copies_the_model_folder_and_reads_its_description(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    v = reg.register_model(f"runs:/{run_id}/model", "churn", tags={"team": "ml"}, description="d")
    assert (v.name, v.version, v.run_id, v.created_by) == ("churn", 1, run_id, "ada")
    assert v.flavor == "sklearn"
    assert v.signature == {
        "inputs": [{"name": "x", "dtype": "float64"}],
        "outputs": [{"name": "y", "dtype": "int64"}],
    }
    assert (v.tags, v.description, v.review_status, v.source) == (
        {"team": "ml"},
        "d",
        "none",
        f"runs:/{run_id}/model",
    )
    files = reg.model_files("models:/churn/1")
    assert files.uri == "models:/churn/1"
    assert [f.path for f in files.files] == ["loopline-model.yaml", "sub/extra.txt", "weights.bin"]
    assert reg.get_registered_model("churn").latest_version == 1
    assert kinds(reg)[-2:] == ["model.created", "model.version_created"]


def test_a_version_is_immutable_whatever_happens_to_its_source(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking, weights=b"original")
    reg.register_model(f"runs:/{run_id}/model", "churn")
    before = {f.path: f.digest for f in reg.model_files("models:/churn/1").files}
    tracking.put_artifact(run_id, "model/weights.bin", b"overwritten later")
    tracking.delete_run(run_id)
    after = {f.path: f.digest for f in reg.model_files("models:/churn/1").files}
    assert after == before


def test_versions_are_numbered_per_model_and_never_reused(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    uri = f"runs:/{run_id}/model"
    assert [reg.register_model(uri, "a").version for _ in range(3)] == [1, 2, 3]
    assert reg.register_model(uri, "b").version == 1
    reg.delete_model_version("a", 3)
    assert reg.register_model(uri, "a").version == 4
    assert [v.version for v in reg.search_model_versions(name="a")[0]] == [4, 2, 1]


def test_register_from_an_existing_version_and_a_single_file(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    copy = reg.register_model("models:/churn/1", "churn-copy")
    assert (copy.run_id, copy.flavor) == (run_id, "sklearn")
    single = reg.register_model(f"runs:/{run_id}/model/weights.bin", "raw")
    assert [f.path for f in reg.model_files(single.uri).files] == ["weights.bin"]
    assert single.flavor == ""


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("runs:/" + "0" * 32 + "/model", NotFoundError),  # no such run
        ("models:/nobody/1", NotFoundError),
        ("models:/m-0123", NotFoundError),
        ("s3://bucket/model", InvalidArgumentError),
        ("./local/folder", InvalidArgumentError),
    ],
)
def test_register_refuses_what_it_cannot_copy(
    reg: RegistryService, uri: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        reg.register_model(uri, "churn")


def test_register_refuses_an_empty_path_and_bad_names(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    with pytest.raises(NotFoundError, match="no files"):
        reg.register_model(f"runs:/{run_id}/nothing-here", "churn")
    for bad in ("123", "a b", "", "x@y"):
        with pytest.raises(InvalidArgumentError):
            reg.register_model(f"runs:/{run_id}/model", bad)


def test_register_refuses_files_that_contradict_their_recorded_digests(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    tracking.put_artifact(
        run_id,
        "model/loopline-model.yaml",
        b"flavor: sklearn\nfiles:\n  weights.bin: blake3:" + b"0" * 64 + b"\n",
    )
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        reg.register_model(f"runs:/{run_id}/model", "churn")


def test_models_are_created_once_and_described(reg: RegistryService) -> None:
    made = reg.create_registered_model("fraud", description="card fraud", tags={"team": "risk"})
    assert (made.name, made.description, made.tags, made.latest_version) == (
        "fraud",
        "card fraud",
        {"team": "risk"},
        None,
    )
    with pytest.raises(AlreadyExistsError):
        reg.create_registered_model("fraud")
    with pytest.raises(NotFoundError):
        reg.get_registered_model("nope")
    updated = reg.update_registered_model("fraud", description="new", require_approval=True)
    assert (updated.description, updated.require_approval) == ("new", True)
    renamed = reg.update_registered_model("fraud", new_name="fraud-v2")
    assert renamed.name == "fraud-v2"
    with pytest.raises(NotFoundError):
        reg.get_registered_model("fraud")
    reg.set_registered_model_tag("fraud-v2", "owner", "ana")
    reg.set_registered_model_tag("fraud-v2", "team", None)
    assert reg.get_registered_model("fraud-v2").tags == {"owner": "ana"}


def test_search_models_and_versions_with_filters_and_pages(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    for name in ("churn-a", "churn-b", "fraud"):
        reg.register_model(f"runs:/{run_id}/model", name, tags={"family": name.split("-")[0]})
    found, token = reg.search_registered_models(filter_string="name LIKE 'churn%'")
    assert [m.name for m in found] == ["churn-a", "churn-b"]
    assert token is None
    first, token = reg.search_registered_models(max_results=2, order_by=["name DESC"])
    assert [m.name for m in first] == ["fraud", "churn-b"]
    rest, token = reg.search_registered_models(
        max_results=2, order_by=["name DESC"], page_token=token
    )
    assert ([m.name for m in rest], token) == (["churn-a"], None)
    by_tag, _ = reg.search_model_versions(filter_string="tags.family = 'fraud'")
    assert [v.name for v in by_tag] == ["fraud"]
    by_run, _ = reg.search_model_versions(filter_string=f"run_id = '{run_id}' and name != 'fraud'")
    assert sorted(v.name for v in by_run) == ["churn-a", "churn-b"]
    with pytest.raises(InvalidArgumentError, match="cannot filter"):
        reg.search_model_versions(filter_string="colour = 'red'")


# -- resolution and aliases ---------------------------------------------------------------
def test_resolve_every_kind_of_reference(reg: RegistryService, tracking: TrackingService) -> None:
    first = model_run(tracking, weights=b"one")
    second = model_run(tracking, weights=b"two")
    reg.register_model(f"runs:/{first}/model", "churn")
    v2 = reg.register_model(f"runs:/{second}/model", "churn")
    reg.set_alias("churn", "champion", 1)
    digest = next(f.digest for f in reg.model_files(v2.uri).files if f.path == "weights.bin")
    cases = {
        "churn@1": 1,
        "churn@2": 2,
        "churn@champion": 1,
        "churn@latest": 2,
        "churn": 2,
        "models:/churn/1": 1,
        "models:/churn/latest": 2,
        "models:/churn@champion": 1,
        f"churn@sha:{digest.split(':')[1][:12]}": 2,
    }
    for ref, expected in cases.items():
        assert reg.resolve(ref).version == expected, ref
    assert reg.resolve("churn@champion").aliases == ["champion"]
    for missing in ("churn@challenger", "churn@9", "other@1", "models:/churn/7"):
        with pytest.raises(NotFoundError):
            reg.resolve(missing)


def test_alias_moves_are_atomic_and_kept_with_who_when_and_from(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    for _ in range(3):
        reg.register_model(f"runs:/{run_id}/model", "churn")
    mark = last_event_id(reg)
    reg.set_alias("churn", "champion", 1)
    reg.for_user("bob").set_alias("churn", "champion", 3, reason="better auc")
    reg.set_alias("churn", "champion", 3)  # no move: nothing recorded
    reg.set_alias("churn", "challenger", 2)
    reg.delete_alias("churn", "challenger")
    history = reg.alias_history("churn", "champion")
    assert [(h.from_version, h.to_version, h.actor, h.reason) for h in history] == [
        (None, 1, "ada", ""),
        (1, 3, "bob", "better auc"),
    ]
    assert all(h.created_at > 0 for h in history)
    assert [(h.alias, h.to_version) for h in reg.alias_history("churn")][-2:] == [
        ("challenger", 2),
        ("challenger", None),
    ]
    assert reg.get_registered_model("churn").aliases == {"champion": 3}
    moved = [e for e in read_events(reg.db, after_id=mark) if e.kind == "model.alias_moved"]
    assert [(e.payload["from_version"], e.payload["to_version"]) for e in moved] == [
        (None, 1),
        (1, 3),
        (None, 2),
    ]
    assert moved[1].payload == {
        "model": "churn",
        "alias": "champion",
        "from_version": 1,
        "to_version": 3,
        "protected": False,
    }
    assert moved[1].actor == "bob"
    assert kinds(reg, mark)[-1] == "model.alias_deleted"


def test_aliases_must_be_labels_and_point_at_live_versions(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    for bad in ("latest", "3", "a b", ""):
        with pytest.raises(InvalidArgumentError):
            reg.set_alias("churn", bad, 1)
    with pytest.raises(NotFoundError):
        reg.set_alias("churn", "champion", 2)
    with pytest.raises(NotFoundError):
        reg.delete_alias("churn", "champion")


# -- reviews and protected aliases -----------------------------------------------------------
def test_versions_of_models_that_require_approval_start_pending(
    reg: RegistryService, tracking: TrackingService
) -> None:
    reg.create_registered_model("fraud", require_approval=True)
    run_id = model_run(tracking)
    v = reg.register_model(f"runs:/{run_id}/model", "fraud")
    assert v.review_status == "pending_review"
    mark = last_event_id(reg)
    decision = reg.for_user("rita").review("fraud", 1, "approved", comment="looks good")
    assert (decision.decision, decision.reviewer, decision.comment) == (
        "approved",
        "rita",
        "looks good",
    )
    assert decision.created_at > 0
    assert reg.get_model_version("fraud", 1).review_status == "approved"
    with pytest.raises(InvalidStateError, match="already approved"):
        reg.review("fraud", 1, "rejected")
    reviews = reg.list_reviews("fraud", 1)
    assert [(r.decision, r.reviewer) for r in reviews] == [
        ("requested", "ada"),
        ("approved", "rita"),
    ]
    event = next(e for e in read_events(reg.db, after_id=mark) if e.kind == "model.review_decided")
    assert event.payload == {
        "model": "fraud",
        "version": 1,
        "decision": "approved",
        "reviewer": "rita",
        "comment": "looks good",
    }
    reg.register_model(f"runs:/{run_id}/model", "fraud")
    reg.review("fraud", 2, "rejected", comment="leaks the label")
    assert reg.get_model_version("fraud", 2).review_status == "rejected"
    reg.review("fraud", 2, "requested")
    assert reg.get_model_version("fraud", 2).review_status == "pending_review"
    with pytest.raises(InvalidArgumentError):
        reg.review("fraud", 2, "maybe")


def test_a_protected_alias_only_points_at_approved_versions(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.register_model(f"runs:/{run_id}/model", "churn")
    with pytest.raises(InvalidStateError, match="protected"):
        reg.set_alias("churn", "champion", 1, protect=True)
    reg.review("churn", 1, "approved")
    assert reg.set_alias("churn", "champion", 1, protect=True).protected
    with pytest.raises(InvalidStateError, match="approve it first"):
        reg.set_alias("churn", "champion", 2)  # protection stays on
    assert reg.resolve("churn@champion").version == 1
    with pytest.raises(InvalidStateError, match="must stay approved"):
        reg.review("churn", 1, "requested")
    reg.set_alias("churn", "champion", 2, protect=False)
    assert [a.protected for a in reg.list_aliases("churn")] == [False]


# -- deletion --------------------------------------------------------------------------------
def test_deleting_a_version_an_alias_points_at_needs_force(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    v2 = reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.set_alias("churn", "champion", 2)
    with pytest.raises(InvalidStateError, match="champion"):
        reg.delete_model_version("churn", 2)
    assert reg.resolve("churn@champion").version == 2
    reg.delete_model_version("churn", 2, force=True)
    with pytest.raises(NotFoundError):
        reg.resolve("churn@champion")
    with pytest.raises(NotFoundError):
        reg.get_model_version("churn", 2)
    assert reg.alias_history("churn", "champion")[-1].to_version is None
    assert reg.resolve("churn").version == 1
    with reg.db.read() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(artifacts.c.root == v2.root)
        ).scalar_one()
    assert left == 0
    assert {"model.alias_deleted", "model.version_deleted"} <= set(kinds(reg))


def test_deleting_a_model_frees_its_name(reg: RegistryService, tracking: TrackingService) -> None:
    run_id = model_run(tracking)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.set_alias("churn", "champion", 1)
    with pytest.raises(InvalidStateError, match="aliases"):
        reg.delete_registered_model("churn")
    reg.delete_registered_model("churn", force=True)
    with pytest.raises(NotFoundError):
        reg.get_registered_model("churn")
    assert reg.register_model(f"runs:/{run_id}/model", "churn").version == 1
    assert reg.alias_history("churn") == []


# -- lineage and comparison --------------------------------------------------------------------
def _dataset_version(reg: RegistryService, name: str, version: int) -> int:
    now = now_ms()
    with reg.db.write() as conn:
        ds = conn.execute(
            sa.insert(datasets)
            .values(project_id=1, name=name, created_at=now, updated_at=now)
            .returning(datasets.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                sa.insert(dataset_versions)
                .values(
                    dataset_id=ds,
                    version=version,
                    digest="blake3:" + "ab" * 32,
                    kind="file",
                    file_count=1,
                    total_size=10,
                    created_at=now,
                )
                .returning(dataset_versions.c.id)
            ).scalar_one()
        )


def _edge(reg: RegistryService, src: tuple[str, str], dst: tuple[str, str], relation: str) -> None:
    with reg.db.write() as conn:
        conn.execute(
            sa.insert(lineage).values(
                src_type=src[0],
                src_id=src[1],
                dst_type=dst[0],
                dst_id=dst[1],
                relation=relation,
                context="training",
                created_at=now_ms(),
            )
        )


def test_lineage_goes_from_version_to_run_to_dataset_versions(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    train = _dataset_version(reg, "transactions", 3)
    labels = _dataset_version(reg, "labels", 1)
    _edge(reg, ("dataset_version", str(train)), ("run", run_id), "input")
    _edge(reg, ("pipeline_run", "p-1"), ("run", run_id), "contains")
    # Another step of the same pipeline run trained on other data.
    features = _dataset_version(reg, "features", 2)
    _edge(reg, ("pipeline_run", "p-1"), ("run", "train-step-run"), "contains")
    _edge(reg, ("dataset_version", str(features)), ("run", "train-step-run"), "input")
    v = reg.register_model(f"runs:/{run_id}/model", "churn")
    _edge(reg, ("dataset_version", str(labels)), ("model_version", str(v.version_id)), "input")
    _edge(reg, ("model_version", str(v.version_id)), ("deployment", "prod"), "serves")
    reg.set_alias("churn", "champion", 1)
    found = reg.lineage("churn@champion")
    assert (found.model, found.version, found.run_id, found.run_name, found.experiment_id) == (
        "churn",
        1,
        run_id,
        "train",
        "0",
    )
    assert [(d.ref, d.context, d.via) for d in found.datasets] == [
        ("labels@1", "training", "direct"),
        ("transactions@3", "training", "run"),
        ("features@2", "training", "pipeline"),
    ]
    assert found.pipeline_runs == ["p-1"]
    assert found.downstream == [{"type": "deployment", "id": "prod", "relation": "serves"}]


def test_compare_versions_puts_params_and_metrics_side_by_side(
    reg: RegistryService, tracking: TrackingService
) -> None:
    a = model_run(tracking, params={"depth": "3", "lr": "0.1"}, metrics={"auc": 0.8})
    b = model_run(tracking, params={"depth": "5", "lr": "0.1"}, metrics={"auc": float("nan")})
    reg.register_model(f"runs:/{a}/model", "churn")
    reg.register_model(f"runs:/{b}/model", "churn")
    reg.set_alias("churn", "champion", 2)
    found = reg.compare_versions("churn", 1, "champion")
    assert (found.a.version, found.b.version) == (1, 2)
    rows = {(r.section, r.key): r for r in found.rows}
    assert (rows["params", "depth"].a, rows["params", "depth"].b) == ("3", "5")
    assert rows["params", "depth"].differs
    assert not rows["params", "lr"].differs
    assert rows["metrics", "auc"].a == 0.8
    assert rows["metrics", "auc"].differs


# -- logged models ----------------------------------------------------------------------------
def test_logged_models_are_created_finalized_and_registered(
    reg: RegistryService, tracking: TrackingService
) -> None:
    run_id = model_run(tracking)
    logged = reg.create_logged_model(
        "0", name="model", source_run_id=run_id, params={"alpha": "1"}, tags={"t": "1"}
    )
    assert logged.model_id.startswith("m-")
    assert (logged.status, logged.params, logged.tags) == ("PENDING", {"alpha": "1"}, {"t": "1"})
    reg.put_logged_model_file(logged.model_id, "MLmodel", b"flavors:\n  sklearn: {}\n")
    reg.put_logged_model_file(logged.model_id, "model.skops", b"skops bytes")
    ready = reg.finalize_logged_model(logged.model_id, "READY")
    assert (ready.status, ready.flavor) == ("READY", "sklearn")
    reg.set_logged_model_tags(logged.model_id, {"mlflow.x": "y"})
    reg.delete_logged_model_tag(logged.model_id, "t")
    reg.log_logged_model_params(logged.model_id, {"beta": "2"})
    got = reg.get_logged_model(logged.model_id)
    assert (got.tags, got.params) == ({"mlflow.x": "y"}, {"alpha": "1", "beta": "2"})
    found, _ = reg.search_logged_models(["0"], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [logged.model_id]
    v = reg.register_model(f"models:/{logged.model_id}", "churn")
    assert (v.run_id, v.logged_model_id, v.flavor) == (run_id, logged.model_id, "sklearn")
    # MLflow 3 registers runs:/RUN/NAME through the logged model of that name
    via_run = reg.register_model(f"runs:/{run_id}/model", "churn")
    assert via_run.logged_model_id is None  # the run's own model/ folder wins
    other = model_run(tracking)
    second = reg.create_logged_model("0", name="clf", source_run_id=other)
    reg.put_logged_model_file(second.model_id, "MLmodel", b"flavors: {sklearn: {}}\n")
    assert reg.register_model(f"runs:/{other}/clf", "clf").logged_model_id == second.model_id
    with pytest.raises(InvalidArgumentError):
        reg.finalize_logged_model(logged.model_id, "DONE")
    reg.delete_logged_model(second.model_id)
    with pytest.raises(NotFoundError):
        reg.get_logged_model(second.model_id)
    assert reg.get_logged_model(second.model_id, allow_deleted=True).name == "clf"
    assert {"logged_model.created", "logged_model.finalized", "logged_model.deleted"} <= set(
        kinds(reg)
    )


# -- files, gc ---------------------------------------------------------------------------------
def test_download_model_verifies_every_file(
    reg: RegistryService, tracking: TrackingService, blobs: LocalBlobStore, tmp_path: Path
) -> None:
    run_id = model_run(tracking, weights=b"w" * 10_000)
    reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.set_alias("churn", "champion", 1)
    client = RegistryClient(transport=reg)
    out = client.download_model("models:/churn@champion", tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "loopline-model.yaml",
        "sub/extra.txt",
        "weights.bin",
    ]
    assert (out / "weights.bin").read_bytes() == b"w" * 10_000
    assert (
        client.download_model(f"runs:/{run_id}/model", tmp_path / "run")
        .joinpath("weights.bin")
        .exists()
    )
    weights = next(f for f in reg.model_files("models:/churn/1").files if f.path == "weights.bin")
    from loopline.store.digest import Digest

    blobs.object_path(Digest.parse(weights.digest)).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        client.download_model("models:/churn/1", tmp_path / "bad")
    assert not (tmp_path / "bad" / "weights.bin").exists()


def test_gc_keeps_version_files_after_their_run_is_purged(
    reg: RegistryService, tracking: TrackingService, blobs: LocalBlobStore
) -> None:
    run_id = model_run(tracking, weights=b"keep me")
    v = reg.register_model(f"runs:/{run_id}/model", "churn")
    digests = {f.digest for f in reg.model_files(v.uri).files}
    assert digests <= registry_references(reg.db)
    tracking.delete_run(run_id)
    report = collect(reg.db, blobs, dry_run=False, grace_ms=0)
    assert run_id in report.runs_purged
    out = RegistryClient(transport=reg).download_model(v.uri)
    assert (out / "weights.bin").read_bytes() == b"keep me"
    reg.delete_model_version("churn", 1)
    assert not digests & registry_references(reg.db)
    collect(reg.db, blobs, dry_run=False, grace_ms=0)
    with pytest.raises(NotFoundError):
        reg.model_files(v.uri)


def test_every_change_emits_an_event(reg: RegistryService, tracking: TrackingService) -> None:
    run_id = model_run(tracking)
    mark = last_event_id(reg)
    reg.create_registered_model("churn")
    reg.set_registered_model_tag("churn", "a", "b")
    reg.update_registered_model("churn", description="x")
    reg.register_model(f"runs:/{run_id}/model", "churn")
    reg.set_model_version_tag("churn", 1, "k", "v")
    reg.update_model_version("churn", 1, description="y")
    reg.review("churn", 1, "approved")
    reg.set_alias("churn", "champion", 1)
    reg.set_alias("churn", "champion", 1, protect=True)
    reg.delete_alias("churn", "champion")
    reg.delete_model_version("churn", 1)
    reg.delete_registered_model("churn")
    assert kinds(reg, mark) == [
        "model.created",
        "model.tag_set",
        "model.updated",
        "model.version_created",
        "model.version_tag_set",
        "model.version_updated",
        "model.review_decided",
        "model.alias_moved",
        "model.alias_protection_changed",
        "model.alias_deleted",
        "model.version_deleted",
        "model.deleted",
    ]

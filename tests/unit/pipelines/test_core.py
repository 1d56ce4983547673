"""Tracing pipelines into DAGs, errors found before anything runs, materializers, cache keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

import loopline
from loopline.pipelines import PipelineDefinitionError
from loopline.pipelines.fingerprint import code_digest
from loopline.pipelines.materializers import load_value, store_value

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType


@loopline.step
def one() -> int:
    return 1


@loopline.step
def inc(x: int) -> int:
    return x + 1


@loopline.step(outputs=("a", "b"))
def pair() -> tuple[int, int]:
    return 1, 2


def test_dag_follows_the_data_between_steps() -> None:
    @loopline.pipeline
    def flow() -> None:
        a, b = pair()
        inc(a)
        inc(inc(b))

    dag = flow.build()
    assert [n.name for n in dag.nodes] == ["pair", "inc", "inc_2", "inc_3"]
    assert dag.node("inc_3").upstream == {"inc_2"}
    assert dag.node("inc").args["x"].index == "a"
    assert dag.downstream("pair") == {"inc", "inc_2", "inc_3"}


def test_using_an_output_as_a_value_names_the_line() -> None:
    @loopline.pipeline
    def flow() -> None:
        x = one()
        inc(x + 1)

    with pytest.raises(PipelineDefinitionError, match=r"test_core.py:\d+.*output of step 'one'"):
        flow.build()


def test_missing_parameters_are_refused_before_running() -> None:
    @loopline.pipeline
    def flow(n: int) -> None:
        inc(n)

    with pytest.raises(PipelineDefinitionError, match="needs parameter 'n'"):
        flow.build()
    with pytest.raises(PipelineDefinitionError, match="has no parameter lr"):
        flow.resolve_params({"n": 1, "lr": 2})
    assert flow.resolve_params(text={"n": "3"}) == {"n": 3}

    @loopline.pipeline
    def wrong_call() -> None:
        inc()

    with pytest.raises(PipelineDefinitionError, match=r"step 'inc' called at .*test_core.py"):
        wrong_call.build()


def test_a_step_outside_a_pipeline_is_its_function() -> None:
    assert inc(1) == 2


def test_materializers_round_trip_each_kind(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from loopline.store.blobs import open_blob_store

    blobs = open_blob_store(str(tmp_path / "blobs"))
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    values: list[Any] = [frame, np.arange(6).reshape(2, 3), {"k": [1, 2]}, "text", model]
    refs = [store_value(blobs, v, step="s") for v in values]
    assert [r["kind"] for r in refs] == ["parquet", "npy", "json", "json", "model"]
    back = [load_value(blobs, r, cache_dir=tmp_path / "models") for r in refs]
    pd.testing.assert_frame_equal(back[0], frame)
    np.testing.assert_array_equal(back[1], values[1])
    assert back[2:4] == values[2:4]
    np.testing.assert_array_equal(back[4].predict(X), model.predict(X))
    # Same content, same digest: outputs are content-addressed.
    assert store_value(blobs, frame.copy(), step="s")["digest"] == refs[0]["digest"]


def test_unknown_values_need_the_pickle_opt_in(tmp_path: Path) -> None:
    from loopline.store.blobs import open_blob_store

    class Thing:
        pass

    blobs = open_blob_store(str(tmp_path / "blobs"))
    with pytest.raises(PipelineDefinitionError, match="allow_pickle=True"):
        store_value(blobs, Thing(), step="'make' (flow.py:3)")
    ref = store_value(blobs, {1, 2}, step="s", allow_pickle=True)
    assert ref["kind"] == "pickle"
    assert load_value(blobs, ref) == {1, 2}


def test_code_digest_covers_project_helpers(flows: ModuleType, tmp_path: Path) -> None:
    from loopline.pipelines.worker import import_file

    before = code_digest(flows.scaled)
    assert before == code_digest(flows.scaled)
    # The same step with a different helper body has another digest.
    source = (tmp_path / "a.py", tmp_path / "b.py")
    body = "import loopline\n\ndef helper(x):\n    return x {op} 1\n\n@loopline.step\ndef s(x: int) -> int:\n    return helper(x)\n"
    source[0].write_text(body.format(op="+"))
    source[1].write_text(body.format(op="-"))
    a, b = (import_file(str(p)) for p in source)
    assert code_digest(a.s) != code_digest(b.s)

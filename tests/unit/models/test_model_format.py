"""The model directory: its YAML file, digests verified on load, atomic saves."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import yaml

from loopline.errors import AlreadyExistsError, IntegrityError, InvalidStateError, NotFoundError
from loopline.models import load, save_model
from loopline.models.metadata import FORMAT_VERSION, MODEL_FILE, read_metadata

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


@pytest.fixture
def saved(model_dir: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> Path:
    from sklearn.linear_model import LogisticRegression

    x, y = cancer
    model = LogisticRegression(max_iter=5000).fit(x, y)
    save_model(
        model,
        model_dir,
        input_example=x.head(4),
        metadata={"owner": "fraud-team"},
        extra_files={"notes/README.md": _write(model_dir.parent / "readme.md", "# notes")},
    )
    return model_dir


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_yaml_file_records_what_the_issue_asks(saved: Path) -> None:
    doc = yaml.safe_load((saved / MODEL_FILE).read_text())
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["flavor"] == "sklearn"
    assert doc["loader"]["file"] == "model.skops"
    assert doc["signature"]["inputs"]["columns"][0] == {"name": "mean radius", "dtype": "float64"}
    assert doc["signature"]["outputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1]}
    assert doc["input_example"] == "input_example.parquet"
    assert doc["python_version"].count(".") == 2
    assert any(r.startswith("scikit-learn==") for r in doc["requirements"])
    assert doc["metadata"] == {"owner": "fraud-team"}
    paths = {f["path"] for f in doc["files"]}
    assert paths == {"model.skops", "input_example.parquet", "extra_files/notes/README.md"}
    assert all(f["digest"].startswith("blake3:") and f["size"] > 0 for f in doc["files"])


def test_input_example_comes_back_with_its_dtypes(
    saved: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    example = load(saved).input_example
    assert example.equals(cancer[0].head(4).reset_index(drop=True))


@pytest.mark.parametrize("victim", ["model.skops", "extra_files/notes/README.md"])
def test_a_tampered_file_is_refused_with_its_name(saved: Path, victim: str) -> None:
    file = saved / victim
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    file.chmod(0o644)
    file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"model file '{re.escape(victim)}' does not match"):
        load(saved)


def test_a_missing_or_unrecorded_file_is_refused(saved: Path) -> None:
    (saved / "smuggled.py").write_text("import os")
    with pytest.raises(IntegrityError, match=r"'smuggled\.py' is not among the files"):
        load(saved)
    (saved / "smuggled.py").unlink()
    (saved / "input_example.parquet").unlink()
    with pytest.raises(IntegrityError, match=r"'input_example\.parquet' is missing"):
        load(saved)


def test_a_newer_format_is_refused_with_an_upgrade_hint(saved: Path) -> None:
    doc = yaml.safe_load((saved / MODEL_FILE).read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (saved / MODEL_FILE).write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidStateError, match="upgrade loopline"):
        load(saved)


def test_saving_over_an_existing_model_is_refused(
    saved: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    with pytest.raises(AlreadyExistsError):
        save_model(object(), saved)
    assert read_metadata(saved).flavor == "sklearn"


def test_a_failed_save_leaves_nothing_behind(model_dir: Path) -> None:
    class Broken:
        def predict(self, x: object) -> object:
            return x

        def __reduce__(self) -> tuple[object, ...]:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_model(Broken(), model_dir)
    assert not model_dir.exists()
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".model")]


def test_loading_a_folder_without_a_model_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=MODEL_FILE):
        load(tmp_path)
    with pytest.raises(NotFoundError, match="no model folder"):
        load(tmp_path / "nothing-here")


def test_unknown_flavor_names_the_extra(saved: Path) -> None:
    from loopline.errors import MissingDependencyError

    doc = yaml.safe_load((saved / MODEL_FILE).read_text())
    doc["flavor"] = "catboost"
    (saved / MODEL_FILE).write_text(yaml.safe_dump(doc))
    with pytest.raises(MissingDependencyError, match=r"loopline\[catboost\]"):
        load(saved)


def test_missing_library_names_the_extra(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from loopline.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "skops.io", None)  # import now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'loopline\[sklearn\]'"):
        load(saved)

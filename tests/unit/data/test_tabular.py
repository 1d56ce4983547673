"""Profiles and schemas of tabular files at add time; reading versions into pandas."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

import loopline.data as data
from loopline.data.profile import profile_table, tabular_format
from loopline.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from pathlib import Path


def test_a_csv_gets_a_schema_and_a_profile(wine_csv: Path, wine_frame: pd.DataFrame) -> None:
    version = data.add(wine_csv, "wine")
    schema = version.schema["wine.csv"]
    assert schema["format"] == "csv"
    assert schema["rows"] == 178
    assert [c["name"] for c in schema["columns"]] == list(wine_frame.columns)
    profile = version.profile()["wine.csv"]
    alcohol = profile["columns"]["alcohol"]
    assert alcohol["kind"] == "numeric"
    assert alcohol["missing"] == 0.0
    assert alcohol["min"] == pytest.approx(wine_frame["alcohol"].min())
    assert alcohol["max"] == pytest.approx(wine_frame["alcohol"].max())
    assert alcohol["quantiles"]["0.5"] == pytest.approx(wine_frame["alcohol"].median())
    assert sum(alcohol["histogram"]["counts"]) == 178
    target = profile["columns"]["target"]
    assert target["kind"] == "numeric"
    assert target["min"] == 0
    assert target["max"] == 2


def test_categories_booleans_and_missing_values(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "color": ["red", "blue", None, "red", "red"],
            "ok": [True, False, True, None, True],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None, "2024-03-01", "2024-01-15"]),
            "x": [1.0, None, 3.0, float("nan"), 5.0],
        }
    )
    path = tmp_path / "mixed.parquet"
    frame.to_parquet(path)
    profile = data.add(path, "mixed").profile()["mixed.parquet"]["columns"]
    assert profile["color"]["top"] == [["red", 3], ["blue", 1]]
    assert profile["color"]["missing"] == pytest.approx(0.2)
    assert (profile["ok"]["true"], profile["ok"]["false"]) == (3, 1)
    assert profile["when"]["kind"] == "temporal"
    assert profile["when"]["min"].startswith("2024-01-01")
    assert profile["x"]["max"] == 5.0


def test_profiles_of_unchanged_files_are_reused(tmp_path: Path, wine_frame: pd.DataFrame) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    wine_frame.iloc[:90].to_csv(folder / "a.csv", index=False)
    wine_frame.iloc[90:].to_csv(folder / "b.csv", index=False)
    first = data.add(folder, "parts")
    (folder / "notes.txt").write_text("a new file, the tables are unchanged")
    second = data.add(folder, "parts")
    assert second.version == 2
    assert second.schema == first.schema
    assert second.profile() == first.profile()


def test_a_malformed_csv_is_versioned_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5,6\n")  # a row with too many fields
    version = data.add(bad, "bad")
    assert "error" in version.schema["bad.csv"]
    assert version.profile() == {}


def test_profiling_can_be_skipped(wine_csv: Path) -> None:
    version = data.add(wine_csv, "wine", profile=False)
    assert version.schema == {}
    assert version.profile_digest is None


def test_to_pandas_reads_one_file_or_concatenates_same_schema_parts(
    tmp_path: Path, wine_frame: pd.DataFrame
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    wine_frame.iloc[:100].to_parquet(folder / "part-0.parquet", index=False)
    wine_frame.iloc[100:].to_parquet(folder / "part-1.parquet", index=False)
    (folder / "README.md").write_text("two parts")
    data.add(folder, "parts")
    frame = data.get("parts").to_pandas()
    pd.testing.assert_frame_equal(frame, wine_frame.reset_index(drop=True), check_dtype=False)
    assert len(data.get("parts").to_pandas("part-1.parquet")) == 78
    with pytest.raises(NotFoundError):
        data.get("parts").to_pandas("nope.csv")
    with pytest.raises(InvalidArgumentError, match="not a CSV"):
        data.get("parts").to_pandas("README.md")


def test_to_pandas_refuses_parts_of_different_schemas(
    tmp_path: Path, wine_frame: pd.DataFrame
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    wine_frame.to_csv(folder / "a.csv", index=False)
    wine_frame.drop(columns=["hue"]).to_csv(folder / "b.csv", index=False)
    data.add(folder, "mixed")
    with pytest.raises(InvalidArgumentError, match="another schema"):
        data.get("mixed").to_pandas()
    text = tmp_path / "notes.txt"
    text.write_text("x")
    data.add(text, "notes")
    with pytest.raises(InvalidArgumentError, match="no CSV"):
        data.get("notes").to_pandas()


def test_tabular_formats() -> None:
    assert tabular_format("x.tsv") == "tsv"
    assert tabular_format("dir.csv/file") is None
    assert tabular_format("noext") is None
    import pyarrow as pa

    assert profile_table(pa.table({"x": pa.array([], pa.float64())}))["rows"] == 0

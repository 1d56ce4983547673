"""The prediction log: columns, exclusions, hashing, feedback, the writer process, retention."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest

from loopline import predlog
from loopline.serving import _logwriter
from loopline.serving.predlog import LogSettings, PredictionLogger, remove_older_than

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.serving.model import ServedModel


def _log(
    logger: PredictionLogger, model: ServedModel, n: int, variant: str = "primary"
) -> list[str]:
    ids = []
    for i in range(n):
        data = model.from_rows(np.random.default_rng(i).uniform(0.5, 7.0, size=(1 + i % 2, 4)))
        rid = uuid.uuid4().hex
        logger.log([rid], [len(data)], model, variant, 1.5, data, model.predict(data))
        ids.extend([rid] * len(data))
    return ids


def test_rows_columns_exclusions_and_hashes(tmp_path: Path, iris_model: ServedModel) -> None:
    settings = LogSettings(exclude=("sepal_width",), hash_columns=("petal_width",))
    logger = PredictionLogger(tmp_path, "iris", settings)
    ids = _log(logger, iris_model, 5)
    assert logger.flush() == len(ids)  # in this process: no writer was started
    table = predlog.read_log(tmp_path, "predictions", "iris").to_pandas()
    assert table["request_id"].tolist() == ids
    assert set(table["source"]) == {"iris"}
    assert set(table["model_name"]) == {"iris"}
    assert set(table["model_version"]) == {"0"}
    assert "in.sepal_width" not in table
    assert table["in.petal_width"].str.len().eq(64).all()
    assert table["in.sepal_length"].between(0.5, 7.0).all()
    assert {"out.prediction", "out.proba.0", "out.proba.1", "out.proba.2"} <= set(table)
    assert np.allclose(table[["out.proba.0", "out.proba.1", "out.proba.2"]].sum(axis=1), 1.0)
    assert str(table["timestamp"].dtype) == "datetime64[us, UTC]"


def test_variants_of_one_flush_share_a_file(tmp_path: Path, iris_model: ServedModel) -> None:
    logger = PredictionLogger(tmp_path, "iris")
    _log(logger, iris_model, 3, "primary")
    _log(logger, iris_model, 2, "shadow")
    logger.flush()
    assert len(predlog.list_files(tmp_path, "predictions", "iris")) == 1
    table = predlog.read_log(tmp_path, "predictions", "iris").to_pandas()
    assert table["variant"].value_counts().to_dict() == {"primary": 4, "shadow": 3}


def test_a_flush_across_midnight_writes_both_days(tmp_path: Path, iris_model: ServedModel) -> None:
    logger = PredictionLogger(tmp_path, "iris")
    _log(logger, iris_model, 2)
    midnight = int(datetime(2030, 1, 2, tzinfo=UTC).timestamp() * 1_000_000)
    # Back-date the first request to a second before midnight (the tuple's time field).
    first = logger._chunks[0]
    logger._chunks[0] = (*first[:3], midnight - 1_000_000, *first[4:])
    logger._chunks[1] = (*logger._chunks[1][:3], midnight, *logger._chunks[1][4:])
    logger.flush()
    days = sorted(p.parent.name for p in predlog.list_files(tmp_path, "predictions", "iris"))
    assert days == ["date=2030-01-01", "date=2030-01-02"]


def test_feedback_keeps_each_label_type(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    logger = PredictionLogger(tmp_path, "iris")
    found: dict[str, list[str]] = {}

    def flush(items: list[tuple[str, object]]) -> None:
        logger.feedback(items)
        logger.flush()
        for file in predlog.list_files(tmp_path, "feedback", "iris"):
            table = pq.read_table(file)  # a column has one type: one file per type of label
            found[str(table.schema.field("label").type)] = table.column("request_id").to_pylist()
            file.unlink()

    flush([("a", 1), ("c", True), ("d", "spam"), ("e", 0)])
    assert found == {"int64": ["a", "e"], "bool": ["c"], "string": ["d"]}
    found.clear()
    flush([("a", 1), ("b", 2.5)])
    assert found == {"double": ["b", "a"]}  # integers beside fractions are numbers too


def test_the_writer_process_writes_what_it_was_sent(
    tmp_path: Path, iris_model: ServedModel
) -> None:
    logger = PredictionLogger(tmp_path, "iris", LogSettings(hash_columns=("petal_width",)))
    logger.start()
    try:
        assert logger._pipe is not None
        writer = logger._pipe.proc
        ids = _log(logger, iris_model, 4)
        logger.feedback([(ids[0], 2)])
    finally:
        logger.close()
    assert writer.returncode == 0  # it stopped by itself when the pipe closed
    table = predlog.read_log(tmp_path, "predictions", "iris").to_pandas()
    assert table["request_id"].tolist() == ids
    assert table["in.petal_width"].str.len().eq(64).all()  # hashed in the writer
    assert predlog.read_log(tmp_path, "feedback", "iris").num_rows == 1
    assert logger.errors == 0


def test_without_its_writer_the_logger_writes_itself(
    tmp_path: Path, iris_model: ServedModel
) -> None:
    logger = PredictionLogger(tmp_path, "iris")
    logger.start()
    try:
        assert logger._pipe is not None
        logger._pipe.proc.kill()
        logger._pipe.proc.wait()
        ids = _log(logger, iris_model, 3)
        logger.flush()
    finally:
        logger.close()
    assert logger.errors == 1
    assert predlog.read_log(tmp_path, "predictions", "iris").column("request_id").to_pylist() == ids


def test_a_frame_cut_short_is_dropped_whole(tmp_path: Path) -> None:
    import pyarrow as pa

    when = datetime.now(UTC)
    table = pa.table({"request_id": ["r1"], "timestamp": pa.array([0], pa.timestamp("us", "UTC"))})
    whole = _logwriter.frame(table, "feedback", when)
    stream = io.BytesIO(whole + whole[: len(whole) // 2])
    assert _logwriter.serve_stream(stream, tmp_path, "iris", []) == 1
    files = list(tmp_path.rglob("*"))
    assert [f.name.startswith("part-") for f in files if f.is_file()] == [True]


def test_retention_removes_whole_old_days(tmp_path: Path) -> None:
    for day in ("2030-01-01", "2030-01-05", "2030-01-06"):
        for kind in ("predictions", "feedback"):
            folder = tmp_path / kind / "iris" / f"date={day}"
            folder.mkdir(parents=True)
            (folder / "part-1.parquet").write_bytes(b"x")
    cutoff = datetime(2030, 1, 5, 12, tzinfo=UTC)
    removed = remove_older_than(tmp_path, "iris", cutoff)
    assert sorted(p.name for p in removed) == ["date=2030-01-01"] * 2
    left = sorted(p.name for p in (tmp_path / "predictions" / "iris").iterdir())
    assert left == ["date=2030-01-05", "date=2030-01-06"]
    assert remove_older_than(tmp_path, "iris", cutoff + timedelta(days=10)) != []


def test_sampling_and_settings_round_trip() -> None:
    logger = PredictionLogger.__new__(PredictionLogger)
    logger.settings = LogSettings(sample_rate=0.0)
    assert not any(logger.sampled() for _ in range(100))
    logger.settings = LogSettings(enabled=False)
    assert not logger.sampled()
    settings = LogSettings(sample_rate=0.5, exclude=("a",), hash_columns=("b",), retention_days=7)
    assert LogSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize("source", ["../up", "a/b", ""])
def test_a_source_never_names_a_path(tmp_path: Path, source: str) -> None:
    from loopline.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        PredictionLogger(tmp_path, source)

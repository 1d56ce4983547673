"""Data tests: the training data holds what the model expects."""

from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data"


def test_training_data_has_a_binary_target_and_no_missing_values() -> None:
    frame = pd.read_csv(DATA / "train.csv")
    assert set(frame["target"].unique()) == {0, 1}
    assert not frame.isna().any().any()
    assert len(frame) >= 100


def test_holdout_has_the_same_columns_as_training() -> None:
    train = pd.read_csv(DATA / "train.csv", nrows=5)
    holdout = pd.read_csv(DATA / "holdout.csv", nrows=5)
    assert list(train.columns) == list(holdout.columns)

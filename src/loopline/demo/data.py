"""The demo's data: scikit-learn's bundled breast cancer dataset, split once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DATASET", "DATASET_NAME", "DemoData", "load", "write_table"]

DATASET = "sklearn.breast_cancer"
# The name the demo versions the table under in loopline's data store.
DATASET_NAME = "breast-cancer"
SEED = 42


@dataclass(frozen=True, slots=True)
class DemoData:
    """A stratified train/test split (numpy arrays) and what describes it."""

    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any
    feature_names: list[str]
    target_names: list[str]
    version: str = ""
    """The dataset version the split came from (``breast-cancer@1``), once versioned."""

    def describe(self) -> dict[str, Any]:
        """What every run logs as params about its data."""
        return {
            "dataset": DATASET,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "n_features": len(self.feature_names),
            "split_seed": SEED,
        }


def load(test_size: float = 0.25) -> DemoData:
    """Load the dataset from scikit-learn's package data and split it (stratified)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=test_size, stratify=bunch.target, random_state=SEED
    )
    return DemoData(
        x_train,
        x_test,
        y_train,
        y_test,
        [str(n) for n in bunch.feature_names],
        [str(n) for n in bunch.target_names],
    )


def write_table(folder: Path) -> Path:
    """Write the whole dataset (features and ``target``) as a CSV file under ``folder``."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path

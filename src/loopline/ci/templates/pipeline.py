"""__NAME__: load data -> validate -> train -> evaluate -> gate -> register.

Run it with ``loopline pipeline run pipeline.py --config loopline.toml``. Steps are
cached by their code, parameters and input data: a rerun with nothing changed
reuses every result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import loopline
from loopline.pipelines import validate_data, validate_model

HERE = Path(__file__).resolve().parent
TARGET = "target"


@loopline.step(cache=False)
def version_data(ref: str, path: str, name: str) -> str:
    """A pinned dataset version: ``ref`` when given, else ``path`` as it is now."""
    if ref:
        return loopline.data.get(ref).ref
    return loopline.data.add(HERE / path, name=name).ref


@loopline.step
def train(dataset: str, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Reading a version inside a run records its lineage (this run <- that version).
    frame = loopline.data.get(dataset).to_pandas()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    return model.fit(frame.drop(columns=TARGET), frame[TARGET])


@loopline.pipeline
def train_pipeline(
    train_ref: str = "",
    holdout_ref: str = "",
    c: float = 1.0,
    model_name: str = "__NAME__",
    promote_to: str = "champion",
    champion: str = "champion",
) -> None:
    train_version = version_data(train_ref, "data/train.csv", "__NAME__-train")
    holdout_version = version_data(holdout_ref, "data/holdout.csv", "__NAME__-holdout")
    validate_data(train_version, columns=None, max_missing=0.0, min_rows=100)
    model = train(train_version, c)
    validate_model(
        model,
        holdout_version,
        target=TARGET,
        thresholds={"auc": ">= 0.90", "accuracy": ">= 0.85"},
        champion=f"models:/{model_name}@{champion}",
        register_as=model_name,
        promote_to=promote_to,
    )

"""The closed loop's training pipeline: data -> validate -> train -> gate -> register.

The demo runs it once to make the first champion, then the scheduler runs it again
when monitoring raises a drift alert (``--on-alert``), on the newest data version.

    loopline pipeline run src/loopline/demo/shuttle.py:retrain -p promote_to=champion
"""

from __future__ import annotations

from typing import Any

import loopline
from loopline.pipelines import validate_data, validate_model

TARGET = "anomaly"
MODEL = "shuttle"


@loopline.step(cache=False)
def pin(ref: str) -> str:
    """``NAME@latest`` resolved now, so every later step sees the same version."""
    return loopline.data.get(ref).ref


@loopline.step
def train(dataset: str, trees: int, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    frame = loopline.data.get(dataset).to_pandas()
    model = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=1)
    return model.fit(frame.drop(columns=TARGET), frame[TARGET])


@loopline.pipeline
def retrain(
    train_data: str = "shuttle-train@latest",
    holdout: str = "shuttle-holdout@latest",
    trees: int = 40,
    seed: int = 0,
    min_f1: str = ">= 0.75",
    min_improvement: float = 0.0,
    promote_to: str = "challenger",
) -> None:
    train_version = pin(train_data)
    holdout_version = pin(holdout)
    validate_data(train_version, max_missing=0.0, min_rows=1000)
    model = train(train_version, trees, seed)
    validate_model(
        model,
        holdout_version,
        target=TARGET,
        thresholds={"f1": min_f1},
        champion=f"models:/{MODEL}@champion",
        compare_on="f1",
        min_improvement=min_improvement,
        register_as=MODEL,
        promote_to=promote_to,
    )

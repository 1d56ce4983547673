"""Model tests: the training code learns something on the bundled data."""

from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATA = Path(__file__).resolve().parent.parent / "data"


def test_a_simple_model_beats_chance_by_far() -> None:
    train = pd.read_csv(DATA / "train.csv")
    holdout = pd.read_csv(DATA / "holdout.csv")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train.drop(columns="target"), train["target"])
    scores = model.predict_proba(holdout.drop(columns="target"))[:, 1]
    assert roc_auc_score(holdout["target"], scores) > 0.9

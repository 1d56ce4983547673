"""The demo's candidate models, and training one of them as a tracked run.

Each candidate trains itself and reports a learning curve where one is natural:
boosting stage by stage (``staged_predict_proba``), a random forest as trees are
added, a small neural network epoch by epoch (``partial_fit``). Every run then logs
the same final metrics, a classification report and, when matplotlib is installed,
a confusion-matrix figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import loopline

if TYPE_CHECKING:
    from loopline.demo.data import DemoData

__all__ = ["Candidate", "candidates", "evaluate", "train_and_track"]

SEED = 42
StepLogger = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model to try: its run name, family, hyperparameters and how it trains."""

    name: str
    family: str
    params: dict[str, Any]
    train: Callable[[DemoData, dict[str, Any], StepLogger], Any] = field(repr=False)
    """Fits a model on ``data`` with ``params``; returns it (it has ``predict_proba``)."""


# -- training functions ------------------------------------------------------------
def _train_logreg(data: DemoData, params: dict[str, Any], log: StepLogger) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(**params))
    return model.fit(data.x_train, data.y_train)


def _curve_metrics(y_true: Any, proba: Any) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    return {
        "test_auc": float(roc_auc_score(y_true, proba)),
        "test_log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
    }


def _train_forest(data: DemoData, params: dict[str, Any], log: StepLogger) -> Any:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(**params, random_state=SEED).fit(data.x_train, data.y_train)
    # The forest's test metrics as trees are added: average the first k trees' votes.
    total = np.zeros(len(data.y_test))
    for k, tree in enumerate(model.estimators_, start=1):
        total += tree.predict_proba(data.x_test)[:, 1]
        if k % 10 == 0 or k == len(model.estimators_):
            log(k, _curve_metrics(data.y_test, total / k))
    return model


def _train_boosting(data: DemoData, params: dict[str, Any], log: StepLogger) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(**params, random_state=SEED).fit(data.x_train, data.y_train)
    stages = model.staged_predict_proba(data.x_test)
    for stage, (proba, train_loss) in enumerate(zip(stages, model.train_score_, strict=True), 1):
        log(stage, {**_curve_metrics(data.y_test, proba[:, 1]), "train_loss": float(train_loss)})
    return model


def _train_mlp(data: DemoData, params: dict[str, Any], log: StepLogger) -> Any:
    import numpy as np
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    params = dict(params)
    epochs = int(params.pop("epochs"))
    scaler = StandardScaler().fit(data.x_train)
    x_train, x_test = scaler.transform(data.x_train), scaler.transform(data.x_test)
    model = MLPClassifier(**params, random_state=SEED)
    classes = np.unique(data.y_train)
    for epoch in range(1, epochs + 1):
        model.partial_fit(x_train, data.y_train, classes=classes)
        proba = model.predict_proba(x_test)[:, 1]
        log(epoch, {**_curve_metrics(data.y_test, proba), "train_loss": float(model.loss_)})
    from sklearn.pipeline import Pipeline

    # Both steps are fitted: one scikit-learn object saves (with skops) and loads as one model.
    return Pipeline([("scale", scaler), ("mlp", model)])


def candidates() -> list[Candidate]:
    """The models the demo compares."""
    return [
        Candidate(
            "logreg-C0.05", "logistic_regression", {"C": 0.05, "max_iter": 2000}, _train_logreg
        ),
        Candidate("logreg-C1", "logistic_regression", {"C": 1.0, "max_iter": 2000}, _train_logreg),
        Candidate(
            "random-forest",
            "random_forest",
            {"n_estimators": 200, "max_depth": 8, "min_samples_leaf": 2},
            _train_forest,
        ),
        Candidate(
            "gradient-boosting",
            "gradient_boosting",
            {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 3, "subsample": 0.8},
            _train_boosting,
        ),
        Candidate(
            "mlp",
            "neural_network",
            {"hidden_layer_sizes": (32,), "alpha": 1e-3, "learning_rate_init": 3e-3, "epochs": 60},
            _train_mlp,
        ),
    ]


# -- evaluation and tracking -------------------------------------------------------
def evaluate(y_true: Any, proba: Any, threshold: float = 0.5) -> dict[str, float]:
    """The final metrics every run logs."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    pred = (proba >= threshold).astype(int)
    return {
        "auc": float(roc_auc_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "f1": float(f1_score(y_true, pred)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
    }


def _log_figures(data: DemoData, pred: Any) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # optional: the report says so in the run's tags
        loopline.set_tag("demo.figures", "skipped: matplotlib is not installed")
        return
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(4, 4), layout="constrained")
    ax = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        data.y_test, pred, display_labels=data.target_names, ax=ax, colorbar=False
    )
    ax.set_title("Confusion matrix (test set)")
    loopline.log_figure(figure, "confusion_matrix.png")


def train_and_track(candidate: Candidate, data: DemoData, *, session: str) -> str:
    """Train one candidate inside a run of the active experiment; returns the run id."""
    from sklearn.metrics import classification_report

    tags = {"model_family": candidate.family, "demo_session": session}
    with loopline.start_run(run_name=candidate.name, tags=tags) as run:
        loopline.log_params({"model": candidate.family, **candidate.params, **data.describe()})

        def log_step(step: int, metrics: dict[str, float]) -> None:
            loopline.log_metrics(metrics, step=step)

        started = time.perf_counter()
        model = candidate.train(data, candidate.params, log_step)
        fit_seconds = time.perf_counter() - started
        proba = model.predict_proba(data.x_test)[:, 1]
        loopline.log_metrics({**evaluate(data.y_test, proba), "fit_seconds": fit_seconds})
        pred = (proba >= 0.5).astype(int)
        report = classification_report(data.y_test, pred, target_names=data.target_names)
        loopline.log_text(str(report), "classification_report.txt")
        _log_figures(data, pred)
        if data.version:
            loopline.data.log_input(data.version, context="training")
        loopline.log_model(model, "model", input_example=data.x_test[:5])
    return run.info.run_id

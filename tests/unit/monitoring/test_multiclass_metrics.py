"""Multi-class ROC AUC (one-vs-rest, macro) and log loss against scikit-learn's, on real
data scored by a fitted model: whole windows, a window missing a class, columns in any
class order, labels the model never learnt, and the monitor's text-label entry point."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_iris, load_wine
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.errors import InvalidArgumentError
from loopline.monitoring import metrics
from loopline.monitoring.estimate import classification_metrics


def _scored(loader: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A held-out half scored by a model fitted on the other: labels, predictions,
    probabilities and the model's classes."""
    data = loader()
    order = np.random.default_rng(seed).permutation(len(data.target))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    # A weak fit keeps probabilities away from 0 and 1, so log loss has something to say.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.02, max_iter=2000))
    model.fit(data.data[train], data.target[train])
    x = data.data[test]
    return data.target[test], model.predict(x), model.predict_proba(x), model.classes_


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_a_whole_window_matches_scikit_learn(loader: Any) -> None:
    y, pred, proba, classes = _scored(loader)
    got = metrics(y, pred, proba=proba, classes=classes)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), abs=1e-12)
    assert "unknown_labels" not in got
    # Without classes, the labels' sorted classes are the columns (all present here).
    assert metrics(y, pred, proba=proba) == got


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_a_window_missing_a_class(loader: Any) -> None:
    y, pred, proba, classes = _scored(loader, seed=1)
    keep = y != classes[1]
    y, pred, proba = y[keep], pred[keep], proba[keep]
    got = metrics(y, pred, proba=proba, classes=classes)
    # scikit-learn's average is undefined with a class without labels; ours skips it.
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        assert np.isnan(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    per_class = [skm.roc_auc_score(y == c, proba[:, i]) for i, c in enumerate(classes) if i != 1]
    assert got["roc_auc"] == pytest.approx(np.mean(per_class), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), abs=1e-12)
    # The labels' own classes no longer match the columns: they must be given.
    with pytest.raises(InvalidArgumentError, match="classes="):
        metrics(y, pred, proba=proba)


def test_columns_in_any_class_order_give_the_same_result() -> None:
    y, pred, proba, classes = _scored(load_wine, seed=2)
    order = [2, 0, 1]
    shuffled = metrics(y, pred, proba=proba[:, order], classes=classes[order])
    assert shuffled == pytest.approx(metrics(y, pred, proba=proba, classes=classes))


def test_labels_the_model_never_learnt_are_left_out_and_counted() -> None:
    y, pred, proba, classes = _scored(load_iris, seed=3)
    y = y.copy()
    y[:7] = 9  # a class that appeared after training
    got = metrics(y, pred, proba=proba, classes=classes)
    assert got["unknown_labels"] == 7
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))  # counted wrong
    rest = slice(7, None)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y[rest], proba[rest], labels=classes))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[rest], proba[rest], multi_class="ovr", labels=classes)
    )


def test_binary_models_read_the_same_from_a_vector_or_a_matrix() -> None:
    from sklearn.datasets import load_breast_cancer

    y, pred, proba, classes = _scored(load_breast_cancer)
    vector = metrics(y, pred, proba=proba[:, 1])
    assert vector["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert vector["log_loss"] == pytest.approx(skm.log_loss(y, proba[:, 1]))
    assert metrics(y, pred, proba=proba, classes=classes) == pytest.approx(vector)


def test_the_monitor_compares_labels_as_text_and_skips_rows_without_probabilities() -> None:
    y, pred, proba, classes = _scored(load_wine, seed=4)
    logged = proba.copy()
    logged[:5] = np.nan  # answers logged without probabilities
    # Feedback sends 1.0 where the model's classes are 1; predictions arrive as text.
    got = classification_metrics(y.astype(float), pred.astype(str), None, logged, list(classes))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[5:], proba[5:], multi_class="ovr"), abs=1e-12
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y[5:], proba[5:], labels=classes))
    with pytest.raises(InvalidArgumentError, match="classes"):
        classification_metrics(y, pred, None, proba)
    with pytest.raises(InvalidArgumentError, match="do not match"):
        metrics(y, pred, proba=proba[:, :2], classes=classes)


def test_the_monitor_builds_the_matrix_in_the_model_class_order() -> None:
    import pandas as pd

    from loopline.monitoring.service import _logged_proba

    y, pred, proba, classes = _scored(load_wine, seed=5)
    # Logged by a model with float classes (column out.proba.1.0), columns in any order.
    frame = pd.DataFrame({f"out.proba.{float(c)}": proba[:, i] for i, c in enumerate(classes)})
    frame = frame[frame.columns[::-1]].assign(label=y)
    estimate = {"proba_column": None, "classes": ["0", "1", "2"],
                "proba_columns": ["out.proba.0.0", "out.proba.1.0", "out.proba.2.0"]}  # fmt: skip
    matrix, keys = _logged_proba(frame, estimate)
    assert keys == ["0", "1", "2"]
    np.testing.assert_array_equal(matrix, proba)
    # Without a calibration, the classes come from the column names, read as labels are.
    matrix, keys = _logged_proba(frame, None)
    assert keys == ["2", "1", "0"]
    got = classification_metrics(y, pred, None, matrix, keys)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    # A binary log without an estimate names no positive class: no probabilities.
    assert _logged_proba(frame.iloc[:, :2], None) == (None, None)

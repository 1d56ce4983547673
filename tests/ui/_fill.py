"""Adds what the browser tests look at beyond ``python -m loopline.demo``.

Run as a script with ``LOOPLINE_HOME`` set, after the demo: a second dataset
version (rows dropped, a column added) to diff against the first, a run with
JSON and CSV artifacts and a long loss curve, and a second registered version of
the demo's model for the alias to move to.
"""

from __future__ import annotations

import math

import pandas as pd

import loopline
from loopline.demo.data import DATASET_NAME
from loopline.demo.main import EXPERIMENT, MODEL_NAME


def second_dataset_version() -> None:
    folder = loopline.get_client().settings.home / "demo-data" / DATASET_NAME
    path = folder / "breast_cancer.csv"
    frame = pd.read_csv(path).head(400)
    frame["batch"] = "second"
    frame.to_csv(path, index=False)
    loopline.data.add(folder, DATASET_NAME, message="400 rows and a batch column")


def artifact_run() -> None:
    loopline.set_experiment("ui-artifacts")
    with loopline.start_run(run_name="artifact-showcase"):
        loopline.log_params({"optimizer": "adam", "lr": 0.01})
        for step in range(500):
            loopline.log_metric("loss", math.exp(-step / 80) + 0.05 * math.sin(step / 5), step=step)
        loopline.log_dict({"features": ["radius", "texture"], "threshold": 0.5}, "config.json")
        loopline.log_text("name,score\nalpha,0.91\nbeta,0.87\ngamma,0.78\n", "scores.csv")


def second_model_version() -> None:
    runs = loopline.search_runs(
        experiment_names=[EXPERIMENT], order_by=["metrics.auc ASC"], output_format="list"
    )
    assert isinstance(runs, list)
    loopline.registry.register_model(f"runs:/{runs[0].info.run_id}/model", MODEL_NAME)


if __name__ == "__main__":
    second_dataset_version()
    artifact_run()
    second_model_version()
    loopline.flush()

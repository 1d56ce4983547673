"""The embedded store's DataFrame fast path matches the frame built from Run objects."""

from __future__ import annotations

import math

import pandas as pd
import pandas.testing as pdt

import loopline
from loopline.client.factory import open_service
from loopline.config import get_settings
from loopline.tracking.frame import runs_to_frame


def test_search_frame_equals_the_frame_of_runs() -> None:
    loopline.set_experiment("frames")
    with loopline.start_run(run_name="parent") as parent:
        loopline.log_params({"model": "rf", "depth": 3})
        loopline.log_metrics({"auc": 0.9, "nan": math.nan, "inf": math.inf})
        with loopline.start_run(run_name="child", nested=True):
            loopline.log_metric("auc", 0.8)
            loopline.set_tag("team", "growth")
    with loopline.start_run(run_name="bare"):
        pass
    loopline.flush()
    exp_id = loopline.get_run(parent.info.run_id).info.experiment_id
    service = open_service(get_settings())
    try:
        fast = service.search_frame([exp_id], order_by=["attributes.run_name"])
        runs, _ = service.search_runs([exp_id], order_by=["attributes.run_name"])
        pdt.assert_frame_equal(fast, runs_to_frame(runs))
    finally:
        service.close()
    assert fast["run_name"].tolist() == ["bare", "child", "parent"]
    assert math.isinf(fast.loc[fast.run_name == "parent", "metrics.inf"].item())
    assert pd.isna(fast.loc[fast.run_name == "bare", "params.model"].item())
    assert fast.loc[fast.run_name == "child", "parent_run_id"].item() == parent.info.run_id


def test_the_sdk_search_uses_the_fast_path_and_filters() -> None:
    loopline.set_experiment("frames-sdk")
    for auc in (0.5, 0.7, 0.9):
        with loopline.start_run():
            loopline.log_metric("auc", auc)
    found = loopline.search_runs(filter_string="metrics.auc > 0.6", order_by=["metrics.auc DESC"])
    assert isinstance(found, pd.DataFrame)
    assert found["metrics.auc"].tolist() == [0.9, 0.7]

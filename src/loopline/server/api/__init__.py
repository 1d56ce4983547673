"""The native REST API, ``/api/v1``: one module per resource, one route per transport method.

==========  =======================================================  =========================
Method      Path                                                     Transport method
==========  =======================================================  =========================
POST        /api/v1/experiments                                      create_experiment
GET         /api/v1/experiments?view=&name_like=                     list_experiments
GET         /api/v1/experiments/by-name?name=                        get_experiment_by_name
GET         /api/v1/experiments/{id}                                 get_experiment
PATCH       /api/v1/experiments/{id}                                 update_experiment
DELETE      /api/v1/experiments/{id}                                 delete_experiment
POST        /api/v1/experiments/{id}/restore                         restore_experiment
POST        /api/v1/experiments/{id}/tags                            set_experiment_tag
POST        /api/v1/writes                                           write
GET         /api/v1/runs/{run_id}                                    get_run
POST        /api/v1/runs/search                                      search_runs
GET         /api/v1/runs/{run_id}/metric-history?key=                metric_history
DELETE      /api/v1/runs/{run_id}                                    delete_run
POST        /api/v1/runs/{run_id}/restore                            restore_run
PUT         /api/v1/runs/{run_id}/artifacts/{path}                   put_artifact
GET         /api/v1/runs/{run_id}/artifacts?path=&recursive=         list_artifacts (+ download)
GET         /api/v1/runs/{run_id}/artifacts/{path}                   read_artifact (streamed)
GET         /api/v1/events?after_id=&kinds=&limit=                   events
==========  =======================================================  =========================

Errors answer ``{"error_code", "message", "hint"}`` (see :mod:`loopline.server.errors`).
"""

from __future__ import annotations

from fastapi import APIRouter

from loopline.server.api import artifacts, events, experiments, runs

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
router.include_router(experiments.router)
router.include_router(runs.router)
router.include_router(artifacts.router)
router.include_router(events.router)

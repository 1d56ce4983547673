"""Hyperparameter sweeps on Optuna: each trial a child run, trials in parallel.

The driver asks Optuna for as many trials as the executor has slots, runs each
objective in a worker (the trial's child run is its active run, so it can log
metrics and a model), and tells Optuna each result as it arrives. The sweep's run
records the best trial's params, value and run id; a model the best trial logged
is named by ``best_model_uri``.

>>> import tempfile
>>> from pathlib import Path
>>> from loopline.config import Settings, reset_settings
>>> reset_settings(Settings(home=Path(tempfile.mkdtemp())))
>>> def square(params):
...     return (params["x"] - 2) ** 2
>>> found = sweep(square, {"x": (-5.0, 5.0)}, n_trials=8, executor="inline", direction="minimize", seed=1)
>>> len(found.trials), found.best_value < 9
(8, True)
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.config import Settings

__all__ = ["SweepResult", "sweep"]


@dataclass(slots=True)
class SweepResult:
    run_id: str
    best_params: dict[str, Any]
    best_value: float
    best_run_id: str
    best_model_uri: str | None
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Trial:
    objective: Callable[[dict[str, Any]], float]
    params: dict[str, Any]
    run_id: str
    experiment_id: str
    settings: Settings


def _run_trial(trial: _Trial) -> tuple[float | None, str]:
    from loopline.pipelines.worker import Task, _active_run

    task = Task(
        run_id="",
        node="trial",
        step="trial",
        module="",
        qualname="",
        file="",
        child_run_id=trial.run_id,
        experiment_id=trial.experiment_id,
        settings=trial.settings,
    )
    try:
        with _active_run(task):
            return float(trial.objective(trial.params)), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    import optuna

    if isinstance(spec, optuna.distributions.BaseDistribution):
        return trial._suggest(name, spec)
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        low, high = spec
        if isinstance(low, int) and isinstance(high, int):
            return trial.suggest_int(name, low, high)
        return trial.suggest_float(name, float(low), float(high))
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] in ("int", "float", "log"):
        kind, low, high = spec
        if kind == "int":
            return trial.suggest_int(name, int(low), int(high))
        return trial.suggest_float(name, float(low), float(high), log=kind == "log")
    raise InvalidArgumentError(
        f"search space entry {name!r}: {spec!r} is not a range or a list",
        hint='use (low, high), ("log", low, high), ("int", low, high) or [choices]',
    )


def sweep(
    objective: Callable[[dict[str, Any]], float],
    search_space: dict[str, Any],
    n_trials: int,
    *,
    executor: str = "local",
    direction: str = "maximize",
    name: str | None = None,
    seed: int | None = None,
    ray_address: str | None = None,
) -> SweepResult:
    """Search ``search_space`` for ``n_trials``; ``objective(params) -> float``.

    Space entries: ``(low, high)`` (floats, or ints when both are ints),
    ``("log", low, high)``, ``("int", low, high)``, a list of choices, or an Optuna
    distribution. With the ``local`` or ``ray`` executor the objective must be
    importable (a module-level function).
    """
    import optuna

    from loopline.client.factory import open_service
    from loopline.config import get_settings
    from loopline.pipelines.executors import open_executor
    from loopline.tracking.entities import NewRun, RunUpdate, RunWrites

    if n_trials < 1:
        raise InvalidArgumentError("n_trials must be at least 1")
    if direction not in ("maximize", "minimize"):
        raise InvalidArgumentError("direction is maximize or minimize")
    settings = get_settings()
    label = str(name or getattr(objective, "__name__", "sweep"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,  # type: ignore[arg-type]
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    pool = open_executor(executor, ray_address=ray_address)
    svc = open_service(settings)
    try:
        exp_name = f"sweep/{label}"
        exp = svc.get_experiment_by_name(exp_name)
        exp_id = str(exp.experiment_id if exp else svc.create_experiment(exp_name))
        parent = uuid.uuid4().hex
        now = int(time.time() * 1000)
        svc.write(
            RunWrites(
                batch_id=uuid.uuid4().hex,
                new_runs=[NewRun(parent, exp_id, label, now, settings.user)],
                tags=[
                    (parent, "loopline.runType", "sweep"),
                    (parent, "loopline.sweep.direction", direction),
                    (parent, "loopline.sweep.trials", str(n_trials)),
                ],
            )
        )
        running: dict[Future[Any], tuple[Any, str, dict[str, Any]]] = {}
        trials: list[dict[str, Any]] = []
        asked = 0
        while asked < n_trials or running:
            batch = RunWrites(batch_id=uuid.uuid4().hex)
            while asked < n_trials and len(running) < max(1, pool.slots):
                trial = study.ask()
                params = {k: _suggest(trial, k, v) for k, v in search_space.items()}
                child = uuid.uuid4().hex
                svc.write(
                    RunWrites(
                        batch_id=uuid.uuid4().hex,
                        new_runs=[
                            NewRun(
                                child,
                                exp_id,
                                f"trial-{trial.number}",
                                int(time.time() * 1000),
                                settings.user,
                                parent_run_id=parent,
                            )
                        ],
                        params=[(child, k, str(v)) for k, v in params.items()],
                        tags=[
                            (child, "loopline.parentRunId", parent),
                            (child, "loopline.sweep.trial", str(trial.number)),
                        ],
                    )
                )
                future = pool.submit(_run_trial, _Trial(objective, params, child, exp_id, settings))
                running[future] = (trial, child, params)
                asked += 1
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                trial, child, params = running.pop(future)
                try:
                    value, error = future.result()
                except Exception as exc:
                    value, error = None, f"{type(exc).__name__}: {exc}"
                end = int(time.time() * 1000)
                if value is None or value != value:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    batch.tags.append((child, "loopline.sweep.error", error[:8000] or "NaN"))
                    batch.updates.append(RunUpdate(child, status="FAILED", end_time=end))
                else:
                    study.tell(trial, value)
                    batch.metrics.append((child, "objective", value, end, 0))
                    batch.updates.append(RunUpdate(child, status="FINISHED", end_time=end))
                trials.append(
                    {
                        "number": trial.number,
                        "run_id": child,
                        "params": params,
                        "value": value,
                        "error": error,
                    }
                )
            svc.write(batch)
        complete = [t for t in trials if t["value"] is not None]
        if not complete:
            svc.write(
                RunWrites(
                    batch_id=uuid.uuid4().hex,
                    updates=[RunUpdate(parent, status="FAILED", end_time=int(time.time() * 1000))],
                )
            )
            raise InvalidArgumentError(
                f"all {n_trials} trials of sweep {label!r} failed: {trials[-1]['error']}"
            )
        best = (
            min(complete, key=lambda t: t["value"])
            if direction == "minimize"
            else max(complete, key=lambda t: t["value"])
        )
        model_uri = None
        if any(a.path.startswith("model") for a in svc.list_artifacts(best["run_id"])):
            model_uri = f"runs:/{best['run_id']}/model"
        end = int(time.time() * 1000)
        tags = [(parent, "loopline.sweep.bestRunId", best["run_id"])]
        if model_uri:
            tags.append((parent, "loopline.sweep.bestModelUri", model_uri))
        svc.write(
            RunWrites(
                batch_id=uuid.uuid4().hex,
                params=[(parent, f"best.{k}", str(v)) for k, v in best["params"].items()],
                metrics=[(parent, "best_value", float(best["value"]), end, 0)],
                tags=tags,
                updates=[RunUpdate(parent, status="FINISHED", end_time=end)],
            )
        )
        trials.sort(key=lambda t: t["number"])
        return SweepResult(
            parent, best["params"], float(best["value"]), best["run_id"], model_uri, trials
        )
    finally:
        svc.close()
        pool.shutdown()

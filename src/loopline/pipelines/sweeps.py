"""Hyperparameter sweeps on Optuna: each trial a child run, trials in parallel.

The driver only asks and tells Optuna; the workers do the trial work. Trials go
to the executor in chunks (one trial each at first, then as many as take about
:data:`CHUNK_SECONDS`, measured on the trials done so far), and a worker records
its chunk itself: the chunk's child runs in one transaction before the first
objective runs (so an objective can log metrics and a model to its trial's run),
the outcomes through the tracking writer in one batch after the last. The
driver keeps two chunks per executor slot in flight, so workers never wait
while it talks to Optuna. The sweep's run records the best trial's params, value
and run id; a model the best trial logged is named by ``best_model_uri``.

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
    from loopline.tracking.service import TrackingService

__all__ = ["SweepResult", "sweep"]

CHUNK_SECONDS = 0.05
"""About how long a chunk of trials should keep a worker busy."""
MAX_CHUNK = 32


@dataclass(slots=True)
class SweepResult:
    run_id: str
    best_params: dict[str, Any]
    best_value: float
    best_run_id: str
    best_model_uri: str | None
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Chunk:
    """Trials for one worker: ``(number, run id, params)`` each."""

    objective: Callable[[dict[str, Any]], float] | tuple[str, str, str]
    trials: list[tuple[int, str, dict[str, Any]]]
    parent: str
    experiment_id: str
    settings: Settings


@dataclass(slots=True)
class _Outcome:
    number: int
    value: float | None
    error: str
    seconds: float


def _run_chunk(chunk: _Chunk) -> list[_Outcome]:
    """Run a chunk of trials where the executor put it, recording their runs."""
    from loopline.pipelines.worker import Task, _active_run, load_function, use_settings
    from loopline.tracking import fluent
    from loopline.tracking.entities import NewRun, RunUpdate, RunWrites
    from loopline.tracking.writer import TAG

    use_settings(chunk.settings)
    objective = chunk.objective
    if isinstance(objective, tuple):
        objective = load_function(*objective)
    client = fluent.get_client()
    now = int(time.time() * 1000)
    runs = RunWrites(batch_id=uuid.uuid4().hex)
    for number, run_id, params in chunk.trials:
        runs.new_runs.append(
            NewRun(
                run_id,
                chunk.experiment_id,
                f"trial-{number}",
                now,
                chunk.settings.user,
                parent_run_id=chunk.parent,
            )
        )
        runs.params.extend((run_id, k, str(v)) for k, v in params.items())
        runs.tags.append((run_id, "loopline.parentRunId", chunk.parent))
        runs.tags.append((run_id, "loopline.sweep.trial", str(number)))
    client.transport.write(runs)
    writer = client.writer
    outcomes = []
    for number, run_id, params in chunk.trials:
        started = time.perf_counter()
        value: float | None = None
        error = ""
        task = Task(
            run_id="",
            node="trial",
            step="trial",
            module="",
            qualname="",
            file="",
            child_run_id=run_id,
            experiment_id=chunk.experiment_id,
            settings=chunk.settings,
        )
        try:
            with _active_run(task, flush=False):
                value = float(objective(params))
        except Exception as exc:  # a failed trial is an outcome, not the sweep's end
            error = f"{type(exc).__name__}: {exc}"
        end = int(time.time() * 1000)
        if value is None or value != value:
            value, error = None, error or "the objective returned NaN"
            writer.put((TAG, run_id, "loopline.sweep.error", error[:8000]))
            writer.update(RunUpdate(run_id, status="FAILED", end_time=end))
        else:
            writer.metric(run_id, "objective", value, end, 0)
            writer.update(RunUpdate(run_id, status="FINISHED", end_time=end))
        outcomes.append(_Outcome(number, value, error, time.perf_counter() - started))
    client.flush()
    return outcomes


def _by_reference(
    objective: Callable[[dict[str, Any]], float],
) -> Callable[[dict[str, Any]], float] | tuple[str, str, str]:
    """A module-level function as (module, name, file): a worker imports it, even from a
    file loaded by path, which pickling by name would not find in a Ray worker."""
    code = getattr(objective, "__code__", None)
    qualname = getattr(objective, "__qualname__", "")
    if code is None or "<" in qualname:  # a lambda or a local function travels by value
        return objective
    return (objective.__module__, qualname, code.co_filename)


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
    from loopline.tracking.entities import NewRun, RunWrites

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
        svc.write(
            RunWrites(
                batch_id=uuid.uuid4().hex,
                new_runs=[NewRun(parent, exp_id, label, int(time.time() * 1000), settings.user)],
                tags=[
                    (parent, "loopline.runType", "sweep"),
                    (parent, "loopline.sweep.direction", direction),
                    (parent, "loopline.sweep.trials", str(n_trials)),
                ],
            )
        )
        driver = _Driver(
            study,
            search_space,
            objective,
            parent,
            exp_id,
            settings,
            by_reference=pool.name != "inline",
        )
        trials = driver.run(pool, n_trials, svc)
        return _finish(svc, trials, parent, label, direction, n_trials)
    finally:
        svc.close()
        pool.shutdown()


class _Driver:
    """Asks Optuna for chunks of trials, hands them to the executor, tells the results."""

    def __init__(
        self,
        study: Any,
        space: dict[str, Any],
        objective: Callable[[dict[str, Any]], float],
        parent: str,
        experiment_id: str,
        settings: Settings,
        *,
        by_reference: bool,
    ) -> None:
        self.study = study
        self.space = space
        self.objective = _by_reference(objective) if by_reference else objective
        self.parent = parent
        self.experiment_id = experiment_id
        self.settings = settings
        self.chunk_size = 1
        self.trials: list[dict[str, Any]] = []

    def _submit(
        self, pool: Any, size: int
    ) -> tuple[Future[Any], dict[int, tuple[Any, str, dict[str, Any]]]]:
        asked: dict[int, tuple[Any, str, dict[str, Any]]] = {}
        for _ in range(size):
            trial = self.study.ask()
            params = {k: _suggest(trial, k, v) for k, v in self.space.items()}
            asked[trial.number] = (trial, uuid.uuid4().hex, params)
        chunk = _Chunk(
            self.objective,
            [(n, run_id, params) for n, (_, run_id, params) in asked.items()],
            self.parent,
            self.experiment_id,
            self.settings,
        )
        return pool.submit(_run_chunk, chunk), asked

    def run(self, pool: Any, n_trials: int, svc: TrackingService) -> list[dict[str, Any]]:
        import optuna

        running: dict[Future[Any], dict[int, tuple[Any, str, dict[str, Any]]]] = {}
        asked = 0
        in_flight = 2 * max(1, pool.slots)
        while asked < n_trials or running:
            while asked < n_trials and len(running) < in_flight:
                size = min(self.chunk_size, n_trials - asked)
                future, chunk = self._submit(pool, size)
                running[future] = chunk
                asked += size
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                try:
                    outcomes: list[_Outcome] = future.result()
                except Exception as exc:  # the worker itself failed: the chunk's trials did
                    error = f"the worker running the trials failed: {type(exc).__name__}: {exc}"
                    outcomes = [_Outcome(n, None, error, 0.0) for n in chunk]
                    _record_lost(svc, chunk, error, self)
                for outcome in outcomes:
                    trial, run_id, params = chunk[outcome.number]
                    if outcome.value is None:
                        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    else:
                        self.study.tell(trial, outcome.value)
                    self.trials.append(
                        {
                            "number": outcome.number,
                            "run_id": run_id,
                            "params": params,
                            "value": outcome.value,
                            "error": outcome.error,
                        }
                    )
                self._resize(outcomes)
        return self.trials

    def _resize(self, outcomes: list[_Outcome]) -> None:
        timed = [o.seconds for o in outcomes if o.seconds > 0]
        if timed:
            per_trial = max(sum(timed) / len(timed), 1e-4)
            self.chunk_size = max(1, min(MAX_CHUNK, round(CHUNK_SECONDS / per_trial)))


def _record_lost(
    svc: TrackingService,
    chunk: dict[int, tuple[Any, str, dict[str, Any]]],
    error: str,
    driver: _Driver,
) -> None:
    """Trials of a chunk whose worker died: their runs failed (created if the worker had not)."""
    from loopline.errors import NotFoundError
    from loopline.tracking.entities import NewRun, RunUpdate, RunWrites

    end = int(time.time() * 1000)
    batch = RunWrites(batch_id=uuid.uuid4().hex)
    for number, (_, run_id, _params) in chunk.items():
        try:
            svc.get_run(run_id)
        except NotFoundError:
            batch.new_runs.append(
                NewRun(
                    run_id,
                    driver.experiment_id,
                    f"trial-{number}",
                    end,
                    driver.settings.user,
                    parent_run_id=driver.parent,
                )
            )
        batch.tags.append((run_id, "loopline.sweep.error", error[:8000]))
        batch.updates.append(RunUpdate(run_id, status="FAILED", end_time=end))
    svc.write(batch)


def _finish(
    svc: TrackingService,
    trials: list[dict[str, Any]],
    parent: str,
    label: str,
    direction: str,
    n_trials: int,
) -> SweepResult:
    from loopline.tracking.entities import RunUpdate, RunWrites

    complete = [t for t in trials if t["value"] is not None]
    end = int(time.time() * 1000)
    if not complete:
        svc.write(
            RunWrites(
                batch_id=uuid.uuid4().hex,
                updates=[RunUpdate(parent, status="FAILED", end_time=end)],
            )
        )
        raise InvalidArgumentError(
            f"all {n_trials} trials of sweep {label!r} failed: {trials[-1]['error']}"
        )
    pick = min if direction == "minimize" else max
    best = pick(complete, key=lambda t: t["value"])
    model_uri = None
    if any(a.path.startswith("model") for a in svc.list_artifacts(best["run_id"])):
        model_uri = f"runs:/{best['run_id']}/model"
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

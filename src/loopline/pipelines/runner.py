"""Running a pipeline: cache lookups, child runs, scheduling on an executor, outcomes.

The driver never holds step values: it passes references between steps and
records each step's state, outputs (as artifacts of the step's child run), cache
entry and lineage in the metadata store as the step ends.

Writes are buffered and stored together: everything decided in one pass over the
DAG (steps taken from the cache, steps finished, steps about to start) lands in two
transactions, one for the tracked runs and one for the pipeline's rows, written
before any step is handed to a worker (its child run must exist) and before the
driver waits. A fully cached run is thus two transactions however many steps it has.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, LooplineError
from loopline.pipelines._errors import (
    ApprovalRequiredError,
    GateFailedError,
    PipelineDefinitionError,
    PipelineFailedError,
)
from loopline.pipelines.fingerprint import cache_key, code_digest, env_fingerprint
from loopline.pipelines.store import PipelineStore, RunRecord, StepWrite, now_ms
from loopline.pipelines.worker import Task, TaskResult, load_function, run_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from loopline.config import Settings
    from loopline.pipelines.core import Dag, Node, Pipeline
    from loopline.pipelines.executors import Executor
    from loopline.tracking.entities import RunWrites

__all__ = ["PipelineRun", "Runner"]

HEARTBEAT_SECONDS = 10.0
DONE = ("succeeded", "cached")
FLUSH_ITEMS = 2000
"""Buffered tracking rows that make the runner write before its pass ends (a huge DAG)."""


@dataclass(slots=True)
class PipelineRun:
    """The outcome of a pipeline run; ``load(step)`` reads a step's output back."""

    run_id: str
    pipeline: str
    status: str
    steps: dict[str, str]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: Settings | None = None

    def load(self, step: str, output: str = "output") -> Any:
        """The value step ``step`` returned (``output`` names one of several)."""
        from loopline.pipelines.materializers import load_value
        from loopline.pipelines.worker import blob_store

        refs = self.outputs.get(step)
        if refs is None or output not in refs:
            raise InvalidArgumentError(
                f"step {step!r} of run {self.run_id} has no stored output {output!r}",
                hint=f"steps with outputs: {', '.join(sorted(self.outputs)) or 'none'}",
            )
        from loopline.config import get_settings

        settings = self.settings or get_settings()
        return load_value(
            blob_store(settings), refs[output], cache_dir=settings.home / "pipeline-models"
        )


def check_importable(dag: Dag) -> None:
    """Steps must be reachable by module and name, so worker processes find them."""
    for node in dag.nodes:
        fn = node.step.fn
        qualname = fn.__qualname__
        where = f"step {node.step.name!r} ({node.step.source})"
        if "<locals>" in qualname:
            raise PipelineDefinitionError(
                f"{where} is defined inside a function; worker processes cannot find it",
                hint="define steps at module level, or run with executor='inline'",
            )
        try:
            found = load_function(fn.__module__, qualname, fn.__code__.co_filename)
        except Exception:
            found = None
        if found is not node.step and getattr(found, "fn", None) is not fn:
            raise PipelineDefinitionError(
                f"{where} is not reachable as {fn.__module__}.{qualname}",
                hint="keep the @loopline.step object under its function's name",
            )


class Runner:
    """One run of a pipeline (or the resumption of a failed one)."""

    def __init__(
        self,
        pipe: Pipeline,
        *,
        params: dict[str, Any] | None = None,
        executor: str = "local",
        cache: bool = True,
        thresholds: dict[str, str] | None = None,
        ray_address: str | None = None,
        target: str = "",
        resume: RunRecord | None = None,
        firing_id: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        from loopline.config import get_settings

        self.pipe = pipe
        self.params = params
        self.executor_name = executor
        self.use_cache = cache
        self.thresholds = dict(thresholds or {})
        self.ray_address = ray_address
        self.target = target
        self.resume = resume
        self.firing_id = firing_id
        self.settings = settings or get_settings()
        self.states: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.children: dict[str, str] = {}
        self.errors: dict[str, TaskResult] = {}
        self._ops: list[Callable[[Connection], None]] = []
        self._step_writes: list[StepWrite] = []
        self._writes: RunWrites | None = None

    # -- set-up ----------------------------------------------------------------------
    def run(self) -> PipelineRun:
        if self.settings.remote:
            raise InvalidArgumentError(
                "pipelines run against the metadata database, not through a server",
                hint="set LOOPLINE_TRACKING_URI to the server's database URL (or unset it)",
            )
        dag = self.pipe.build(self.params)
        if self.executor_name != "inline":
            check_importable(dag)
        from loopline.client.factory import open_service
        from loopline.pipelines.executors import open_executor

        # The executor first: a local pool forks while this process is single-threaded.
        executor = open_executor(self.executor_name, ray_address=self.ray_address)
        try:
            for node in dag.nodes:
                executor.check(node.step.resources, f"{node.name!r} ({node.step.source})")
            svc = open_service(self.settings)
            try:
                self.svc = svc
                self.store = PipelineStore(svc.db)
                self.store.fail_dead_runs()
                datasets = self._pin_datasets(dag)
                self._start(dag, datasets)
                return self._loop(dag, datasets, executor)
            finally:
                svc.close()
        finally:
            executor.shutdown()

    def _pin_datasets(self, dag: Dag) -> dict[str, tuple[str, str, str]]:
        """``NAME@latest``/``NAME@tag`` -> the version it names now (ref, digest, id)."""
        refs = {a.value for n in dag.nodes for a in n.args.values() if a.kind == "dataset"}
        if not refs:
            return {}
        from loopline.data.service import DataService

        service = DataService.over(
            self.svc.db, self.svc.blobs, user=self.settings.user, project=self.settings.project
        )
        pinned = {}
        for ref in sorted(refs):
            version = service.resolve(ref)
            pinned[ref] = (version.ref, str(version.digest), str(version.id))
        return pinned

    def _experiment_id(self) -> str:
        name = f"pipeline/{self.pipe.name}"
        found = self.svc.get_experiment_by_name(name)
        if found is None:
            with contextlib.suppress(LooplineError):
                self.svc.create_experiment(name)
            found = self.svc.get_experiment_by_name(name)
        assert found is not None
        return found.experiment_id

    def _start(self, dag: Dag, datasets: dict[str, tuple[str, str, str]]) -> None:
        from loopline.tracking.entities import NewRun

        self.run_id = uuid.uuid4().hex
        self.experiment_id = self._experiment_id()
        user = self.settings.user
        params = {k: v if isinstance(v, str) else repr(v) for k, v in dag.params.items()}
        tags = {
            "loopline.runType": "pipeline",
            "loopline.pipeline": self.pipe.name,
            "loopline.pipeline.executor": self.executor_name,
            "loopline.user": user,
        }
        if self.target:
            tags["loopline.pipeline.target"] = self.target
        if self.resume is not None:
            tags["loopline.pipeline.resumedFrom"] = self.resume.id
        writes = self.writes
        writes.new_runs.append(
            NewRun(self.run_id, self.experiment_id, self.pipe.name, now_ms(), user)
        )
        writes.params.extend((self.run_id, k, v[:6000]) for k, v in params.items())
        writes.tags.extend((self.run_id, k, v) for k, v in tags.items())
        edges = [
            ("dataset_version", datasets[ref][2], "pipeline_run", self.run_id, "input", ref)
            for ref in {a.value for n in dag.nodes for a in n.args.values() if a.kind == "dataset"}
        ]
        create = functools.partial(
            self.store.create_run_in,
            run_id=self.run_id,
            project=self.settings.project,
            pipeline=self.pipe.name,
            target=self.target,
            executor=self.executor_name,
            params=dag.params,
            dag=dag.to_dict(),
            steps=[(n.name, n.step.source) for n in dag.nodes],
            user=user,
            resumed_from=self.resume.id if self.resume else None,
            firing_id=self.firing_id,
            edges=edges,
        )
        self._op(create)

    # -- buffered writes -----------------------------------------------------------------
    @property
    def writes(self) -> RunWrites:
        """Tracked-run rows waiting for :meth:`flush`."""
        if self._writes is None:
            from loopline.tracking.entities import RunWrites

            self._writes = RunWrites(batch_id=uuid.uuid4().hex)
        return self._writes

    def _step(self, name: str, values: dict[str, Any], **extra: Any) -> None:
        """Buffer a change of step ``name`` (see :class:`StepWrite`)."""
        self._step_writes.append(StepWrite(name, values, **extra))

    def _op(self, op: Callable[[Connection], None]) -> None:
        """Buffer another write, after the step changes buffered so far."""
        self._seal()
        self._ops.append(op)

    def _seal(self) -> None:
        if self._step_writes:
            writes, self._step_writes = self._step_writes, []
            self._ops.append(
                functools.partial(self.store.update_steps_in, run_id=self.run_id, writes=writes)
            )

    def flush(self) -> None:
        """Store what is buffered: tracked runs first (step rows name them), then the rest."""
        if self._writes is not None and len(self._writes):
            batch, self._writes = self._writes, None
            self.svc.write(batch)
        self._seal()
        ops, self._ops = self._ops, []
        self.store.apply(ops)

    # -- the loop ----------------------------------------------------------------------
    def _loop(
        self, dag: Dag, datasets: dict[str, tuple[str, str, str]], executor: Executor
    ) -> PipelineRun:
        self.states = {n.name: "pending" for n in dag.nodes}
        running: dict[Future[Any], tuple[Node, int, str]] = {}
        retries: list[tuple[float, Node, int]] = []
        last_beat = time.monotonic()
        try:
            while True:
                self._schedule(dag, datasets, executor, running, retries)
                self.flush()
                if not running and not retries:
                    break
                timeout = None
                if retries:
                    timeout = max(0.0, min(t for t, _, _ in retries) - time.monotonic())
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    node, attempt, key = running.pop(future)
                    self._finished(node, attempt, key, future, retries)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    self.store.heartbeat(self.run_id)
                    last_beat = time.monotonic()
        except BaseException:
            for future in running:
                executor.cancel(future)
            self._end(dag, interrupted=True)
            raise
        return self._end(dag)

    def _schedule(
        self,
        dag: Dag,
        datasets: dict[str, tuple[str, str, str]],
        executor: Executor,
        running: dict[Future[Any], tuple[Node, int, str]],
        retries: list[tuple[float, Node, int]],
    ) -> None:
        now = time.monotonic()
        for due in [r for r in retries if r[0] <= now]:
            retries.remove(due)
            _, node, attempt = due
            task, key = self._task(node, datasets)
            self.flush()
            running[executor.submit(run_task, task, node.step.resources)] = (node, attempt, key)
        progressed = True
        while progressed:
            progressed = False
            for node in dag.nodes:
                if self.states[node.name] != "pending":
                    continue
                ups = [self.states[u] for u in node.upstream]
                if any(s not in DONE and s not in ("pending", "running") for s in ups):
                    self._skip(node)
                    progressed = True
                    continue
                if any(s not in DONE for s in ups):
                    continue
                if len(running) >= executor.slots and executor.name != "inline":
                    return
                task, key = self._task(node, datasets)
                if self._reuse(node, key, task):
                    progressed = True
                    continue
                self._begin(node, task, key)
                self.flush()  # the worker logs to the step's child run: it must exist
                future = executor.submit(run_task, task, node.step.resources)
                running[future] = (node, 1, key)
                if future.done():  # inline: finished already
                    del running[future]
                    self._finished(node, 1, key, future, retries)
                    progressed = True

    def _task(self, node: Node, datasets: dict[str, tuple[str, str, str]]) -> tuple[Task, str]:
        consts, inputs, pinned, digests = {}, {}, {}, {}
        for key, arg in node.args.items():
            if arg.kind == "const":
                consts[key] = arg.value
            elif arg.kind == "dataset":
                pinned[key] = datasets[arg.value][0]
                digests[key] = datasets[arg.value][1]
            else:
                ref = self.outputs[arg.node][arg.index or "output"]
                inputs[key] = ref
                digests[key] = ref["digest"]
        env = env_fingerprint(tuple(node.step.env + self.pipe.env))
        key = cache_key(node.step.name, code_digest(node.step.fn), consts, digests, env)
        child = self.children.get(node.name) or uuid.uuid4().hex
        self.children[node.name] = child
        fn = node.step.fn
        task = Task(
            run_id=self.run_id,
            node=node.name,
            step=node.step.name,
            module=fn.__module__,
            qualname=fn.__qualname__,
            file=fn.__code__.co_filename,
            child_run_id=child,
            experiment_id=self.experiment_id,
            settings=self.settings,
            consts=consts,
            inputs=inputs,
            datasets=pinned,
            outputs=node.step.outputs,
            allow_pickle=node.step.allow_pickle,
            timeout=node.step.timeout,
            thresholds=self.thresholds,
            source=node.step.source,
            resumed=self.resume is not None,
        )
        return task, key

    def _child_run(self, node: Node, task: Task, status: str, extra: dict[str, str]) -> None:
        from loopline.tracking.entities import NewRun, RunUpdate

        now = now_ms()
        tags = {
            "loopline.parentRunId": self.run_id,
            "loopline.runType": "pipeline_step",
            "loopline.pipeline": self.pipe.name,
            "loopline.pipeline.step": node.name,
            "loopline.pipeline.source": node.step.source,
            "loopline.user": self.settings.user,
            **extra,
        }
        params = {k: v if isinstance(v, str) else repr(v) for k, v in task.consts.items()}
        params |= dict(task.datasets)
        batch = self.writes
        batch.new_runs.append(
            NewRun(
                task.child_run_id,
                self.experiment_id,
                node.name,
                now,
                self.settings.user,
                parent_run_id=self.run_id,
            )
        )
        batch.params.extend((task.child_run_id, k, v[:6000]) for k, v in params.items())
        batch.tags.extend((task.child_run_id, k, v) for k, v in tags.items())
        if status != "RUNNING":
            batch.updates.append(RunUpdate(task.child_run_id, status=status, end_time=now))
        if len(batch) > FLUSH_ITEMS:
            self.flush()

    def _reuse(self, node: Node, key: str, task: Task) -> bool:
        """Take a step's outputs from the run being resumed or from the cache."""
        from loopline.pipelines.materializers import artifact_files, exists
        from loopline.pipelines.worker import blob_store

        found: dict[str, Any] | None = None
        origin = ""
        if self.resume is not None:
            prior = next((s for s in self.resume.steps if s.name == node.name), None)
            if prior is not None and prior.status in DONE and prior.outputs:
                found, origin = prior.outputs, f"run {self.resume.id}"
        if found is None and self.use_cache and node.step.cache:
            found, origin = self.store.cached(key), "cache"
        if found is None:
            return False
        blobs = blob_store(self.settings)
        if not all(exists(blobs, ref) for ref in found.values()):
            return False
        self._child_run(node, task, "FINISHED", {"loopline.pipeline.cached": origin})
        files = {
            path: (digest, 0)
            for name, ref in found.items()
            for path, digest in artifact_files(name, ref).items()
        }
        now = now_ms()
        self._step(
            node.name,
            {
                "status": "cached",
                "child_run_id": task.child_run_id,
                "cache_key": key,
                "inputs": _inputs_doc(task),
                "outputs": found,
                "started_at": now,
                "ended_at": now,
                "logs": f"outputs reused from {origin}\n",
            },
            artifacts_of=(task.child_run_id, files),
            edges=[("pipeline_run", self.run_id, "run", task.child_run_id, "step", node.name)],
        )
        self.states[node.name] = "cached"
        self.outputs[node.name] = found
        return True

    def _begin(self, node: Node, task: Task, key: str) -> None:
        self._child_run(node, task, "RUNNING", {})
        self._step(
            node.name,
            {
                "status": "running",
                "child_run_id": task.child_run_id,
                "cache_key": key,
                "inputs": _inputs_doc(task),
                "started_at": now_ms(),
            },
            edges=[("pipeline_run", self.run_id, "run", task.child_run_id, "step", node.name)],
        )
        self.states[node.name] = "running"

    def _finished(
        self,
        node: Node,
        attempt: int,
        key: str,
        future: Future[Any],
        retries: list[tuple[float, Node, int]],
    ) -> None:
        try:
            result: TaskResult = future.result()
        except BaseException as exc:  # the executor itself failed (a worker died)
            import traceback

            result = TaskResult(
                error=f"the worker running the step failed: {type(exc).__name__}: {exc}",
                error_type=type(exc).__name__,
                traceback="".join(traceback.format_exception(exc)),
            )
        if result.error:
            gate = result.error_type in ("GateFailedError", "ApprovalRequiredError")
            if not gate and attempt <= node.step.retries:
                delay = node.step.backoff * (2 ** (attempt - 1))
                retries.append((time.monotonic() + delay, node, attempt + 1))
                self._step(
                    node.name,
                    {
                        "attempts": attempt,
                        "error": f"attempt {attempt} failed: {result.error}",
                        "traceback": result.traceback,
                        "logs": result.logs,
                    },
                )
                return
            self._failed(node, attempt, result)
            return
        self._succeeded(node, attempt, key, result)

    def _succeeded(self, node: Node, attempt: int, key: str, result: TaskResult) -> None:
        from loopline.pipelines.materializers import artifact_files
        from loopline.tracking.entities import RunUpdate

        child = self.children[node.name]
        files = {
            path: (digest, int(ref.get("size", 0)) if ref["kind"] != "model" else 0)
            for name, ref in result.outputs.items()
            for path, digest in artifact_files(name, ref).items()
        }
        self._step(
            node.name,
            {
                "status": "succeeded",
                "attempts": attempt,
                "outputs": result.outputs,
                "logs": result.logs,
                "error": "",
                "traceback": "",
                "started_at": result.started_at,
                "ended_at": result.ended_at,
            },
            cache=(key, result.outputs) if node.step.cache else None,
            artifacts_of=(child, files),
        )
        self.writes.updates.append(RunUpdate(child, status="FINISHED", end_time=result.ended_at))
        self.states[node.name] = "succeeded"
        self.outputs[node.name] = result.outputs

    def _failed(self, node: Node, attempt: int, result: TaskResult) -> None:
        from loopline.tracking.entities import RunUpdate

        status = {"GateFailedError": "gate_failed", "ApprovalRequiredError": "blocked"}.get(
            result.error_type, "failed"
        )
        self.errors[node.name] = result
        self._step(
            node.name,
            {
                "status": status,
                "attempts": attempt,
                "error": result.error,
                "traceback": result.traceback,
                "logs": result.logs,
                "outputs": {"report": result.report} if result.report else {},
                "started_at": result.started_at or now_ms(),
                "ended_at": result.ended_at or now_ms(),
            },
        )
        self.writes.updates.append(
            RunUpdate(
                self.children[node.name],
                status="FINISHED" if status == "blocked" else "FAILED",
                end_time=now_ms(),
            )
        )
        self.states[node.name] = status

    def _skip(self, node: Node) -> None:
        blocked_by = sorted(u for u in node.upstream if self.states[u] not in DONE)
        self._step(
            node.name,
            {
                "status": "skipped",
                "error": f"not run: upstream step {', '.join(blocked_by)} did not succeed",
            },
        )
        self.states[node.name] = "skipped"

    # -- the end -------------------------------------------------------------------
    def _end(self, dag: Dag, *, interrupted: bool = False) -> PipelineRun:
        from loopline.tracking.entities import RunUpdate

        states = set(self.states.values())
        if interrupted:
            status = "killed"
        elif "failed" in states:
            status = "failed"
        elif "gate_failed" in states:
            status = "gate_failed"
        elif "blocked" in states:
            status = "waiting_approval"
        else:
            status = "succeeded"
        message = self._message(status)
        if interrupted:
            message = "interrupted"
            for name, state in self.states.items():
                if state in ("running", "pending"):
                    self._step(name, {"status": "killed", "ended_at": now_ms()})
        self._op(
            functools.partial(
                self.store.finish_run_in, run_id=self.run_id, status=status, error=message
            )
        )
        tracked = {
            "succeeded": "FINISHED",
            "waiting_approval": "FINISHED",
            "killed": "KILLED",
        }.get(status, "FAILED")
        updates = [RunUpdate(self.run_id, status=tracked, end_time=now_ms())]
        if interrupted:
            updates += [
                RunUpdate(self.children[n], status="KILLED", end_time=now_ms())
                for n, s in self.states.items()
                if s == "running" and n in self.children
            ]
        self.writes.updates.extend(updates)
        self.writes.tags.append((self.run_id, "loopline.pipeline.status", status))
        self.flush()
        outcome = PipelineRun(
            run_id=self.run_id,
            pipeline=self.pipe.name,
            status=status,
            steps=dict(self.states),
            outputs=dict(self.outputs),
            settings=self.settings,
        )
        self._raise_for(status, message, outcome)
        return outcome

    def _message(self, status: str) -> str:
        if status == "succeeded":
            return ""
        parts = []
        for name, result in self.errors.items():
            line = next(
                (
                    ln.strip()
                    for ln in reversed(result.traceback.splitlines())
                    if ln.strip().startswith("File ")
                ),
                "",
            )
            parts.append(
                f"step {name!r} {self.states[name]}: {result.error}"
                + (f" [{line}]" if line and self.states[name] == "failed" else "")
            )
        return "; ".join(parts)

    def _raise_for(self, status: str, message: str, outcome: PipelineRun) -> None:
        err: LooplineError
        if status == "failed":
            err = PipelineFailedError(
                f"pipeline {self.pipe.name!r} failed (run {self.run_id}): {message}",
                hint=f"see the tracebacks with `loopline pipeline show {self.run_id}`; "
                f"fix and rerun from the failed step with `loopline pipeline resume {self.run_id}`",
                run_id=self.run_id,
            )
        elif status == "gate_failed":
            report = [r for res in self.errors.values() for r in res.report]
            err = GateFailedError(
                f"pipeline {self.pipe.name!r} stopped at a validation gate (run "
                f"{self.run_id}): {message}",
                report=report,
            )
        elif status == "waiting_approval":
            err = ApprovalRequiredError(
                f"pipeline {self.pipe.name!r} (run {self.run_id}) waits for approval: {message}",
                hint=f"after the approval, `loopline pipeline resume {self.run_id}` promotes it",
            )
        else:
            return
        setattr(err, "pipeline_run", outcome)  # noqa: B010 - the outcome rides on the error
        raise err


def _inputs_doc(task: Task) -> dict[str, Any]:
    return {
        "params": task.consts,
        "inputs": {k: v["digest"] for k, v in task.inputs.items()},
        "datasets": task.datasets,
    }

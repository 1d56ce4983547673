"""Running one step where an executor put it: in-process, a worker process, a Ray task.

A :class:`Task` is small and picklable: the step's function by reference (module,
qualified name, file), constant arguments, references to stored inputs, the
settings. The worker loads inputs from the blob store, runs the function as the
active run (the step's child run, so ``loopline.log_metric`` inside a step logs
there), stores the outputs and returns their references with the captured logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import io
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.pipelines._errors import StepTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from loopline.config import Settings
    from loopline.store.blobs import BlobStore

__all__ = [
    "Task",
    "TaskResult",
    "input_digest",
    "load_function",
    "resuming",
    "run_task",
    "use_settings",
]

MAX_LOG_CHARS = 1_000_000
_current: contextvars.ContextVar[Task | None] = contextvars.ContextVar(
    "loopline_current_step", default=None
)


def input_digest(name: str) -> str | None:
    """The content digest of the running step's input ``name`` (None outside a step).

    A gate tags the version it registers with its model's digest, to recognise it
    when the run is resumed (see :func:`resuming`).
    """
    task = _current.get()
    ref = None if task is None else task.inputs.get(name)
    return None if ref is None else str(ref["digest"])


def resuming() -> bool:
    """True inside a step of a resumed run."""
    task = _current.get()
    return task is not None and task.resumed


@dataclass(slots=True)
class Task:
    run_id: str
    node: str
    step: str
    module: str
    qualname: str
    file: str
    child_run_id: str
    experiment_id: str
    settings: Settings
    consts: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] | None = None
    allow_pickle: bool = False
    timeout: float | None = None
    thresholds: dict[str, str] = field(default_factory=dict)
    source: str = ""
    resumed: bool = False


@dataclass(slots=True)
class TaskResult:
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: str = ""
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    report: list[dict[str, Any]] = field(default_factory=list)
    started_at: int = 0
    ended_at: int = 0


_modules: dict[str, Any] = {}


def load_function(module: str, qualname: str, file: str) -> Any:
    """The step (or function) ``qualname`` of ``module``, importing ``file`` when needed."""
    mod = sys.modules.get(module) or _modules.get(file)
    if mod is None:
        try:
            if module in ("__main__", "__mp_main__") or module.startswith("loopline_user_"):
                raise ImportError(module)
            mod = importlib.import_module(module)
        except ImportError:
            mod = import_file(file, module)
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def import_file(file: str, module: str | None = None) -> Any:
    """Import a Python file by path, once per process (its ``__name__`` is not ``__main__``)."""
    found = _modules.get(file)
    if found is not None:
        return found
    import hashlib
    from pathlib import Path

    name = module if module and module.startswith("loopline_user_") else None
    name = name or "loopline_user_" + hashlib.blake2b(file.encode(), digest_size=6).hexdigest()
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    folder = str(Path(file).resolve().parent)
    if folder not in sys.path:  # the file's own imports of its neighbours
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _modules[file] = mod
    return mod


class _Tee(io.TextIOBase):
    """Writes to the captured buffer and to the original stream."""

    def __init__(self, buffer: io.StringIO, original: Any) -> None:
        self.buffer_ = buffer
        self.original = original

    def write(self, text: str) -> int:
        if self.buffer_.tell() < MAX_LOG_CHARS:
            self.buffer_.write(text)
        with contextlib.suppress(Exception):
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()


@contextlib.contextmanager
def _capture() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(buffer, out), _Tee(buffer, err)
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = out, err


@contextlib.contextmanager
def _deadline(seconds: float | None, step: str) -> Iterator[None]:
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise StepTimeoutError(f"step {step} ran over its timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def use_settings(settings: Settings) -> None:
    """Point this process (and its fluent client) at the driver's store."""
    from loopline.config import get_settings, reset_settings
    from loopline.tracking import fluent

    if get_settings() != settings:
        reset_settings(settings)
        fluent.set_tracking_uri(settings.tracking_uri)


@contextlib.contextmanager
def _active_run(task: Task, *, flush: bool = True) -> Iterator[None]:
    """Make the step's child run the fluent API's active run for the step's duration.

    ``flush=False`` leaves what the step logged in the writer's queue (a sweep
    flushes once per chunk of trials).
    """
    from loopline.tracking import fluent
    from loopline.tracking.entities import RunInfo

    use_settings(task.settings)
    info = RunInfo(
        run_id=task.child_run_id,
        experiment_id=task.experiment_id,
        run_name=task.node,
        status="RUNNING",
        start_time=int(time.time() * 1000),
        end_time=None,
        user_id=task.settings.user,
        artifact_uri=f"runs:/{task.child_run_id}",
    )
    stack = fluent._stack()
    active = fluent.ActiveRun(info)
    stack.append(active)
    try:
        yield
    finally:
        if active in stack:
            stack.remove(active)
        if flush and fluent._client is not None:
            fluent._client.flush()


_blob_stores: dict[str, BlobStore] = {}


def blob_store(settings: Settings) -> BlobStore:
    """One blob store per URI per process."""
    found = _blob_stores.get(settings.blobs_uri)
    if found is None:
        from loopline.store.blobs import open_blob_store

        found = _blob_stores[settings.blobs_uri] = open_blob_store(
            settings.blobs_uri, fsync=settings.fsync
        )
    return found


def _arguments(task: Task, blobs: BlobStore) -> dict[str, Any]:
    from loopline.pipelines.materializers import load_value

    args = dict(task.consts)
    cache_dir = task.settings.home / "pipeline-models"
    for key, ref in task.inputs.items():
        args[key] = load_value(blobs, ref, cache_dir=cache_dir)
    if task.datasets:
        import loopline.data

        for key, name in task.datasets.items():
            args[key] = loopline.data.get(name)  # recorded as an input of the child run
    return args


def _outputs(task: Task, value: Any, blobs: BlobStore) -> dict[str, dict[str, Any]]:
    from loopline.pipelines._errors import PipelineDefinitionError
    from loopline.pipelines.materializers import store_value

    where = f"{task.node!r} ({task.source})"
    if task.outputs is None:
        values = {"output": value}
    else:
        if not isinstance(value, tuple | list) or len(value) != len(task.outputs):
            raise PipelineDefinitionError(
                f"step {where} declares outputs {list(task.outputs)} but returned "
                f"{type(value).__name__}"
                + (f" of {len(value)}" if isinstance(value, tuple | list) else ""),
                hint="return a tuple with one value per declared output",
            )
        values = dict(zip(task.outputs, value, strict=True))
    return {
        name: store_value(blobs, v, step=where, allow_pickle=task.allow_pickle)
        for name, v in values.items()
    }


def run_task(task: Task) -> TaskResult:
    """Run one step; never raises (the error and traceback are in the result)."""
    from loopline.pipelines import gates

    result = TaskResult(started_at=int(time.time() * 1000))
    with _capture() as logs:
        try:
            blobs = blob_store(task.settings)
            fn: Callable[..., Any] = load_function(task.module, task.qualname, task.file)
            fn = getattr(fn, "fn", fn)
            token = _current.set(task)
            with _active_run(task), gates.overrides(task.thresholds):
                args = _arguments(task, blobs)
                with _deadline(task.timeout, task.node):
                    value = fn(**args)
                result.outputs = _outputs(task, value, blobs)
            _current.reset(token)
        except BaseException as exc:  # a step's failure is data, reported by the driver
            if isinstance(exc, KeyboardInterrupt | SystemExit) and not isinstance(exc, SystemExit):
                raise
            result.error_type = type(exc).__name__
            result.error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            result.traceback = traceback.format_exc()
            result.report = list(getattr(exc, "report", []) or [])
            hint = getattr(exc, "hint", None)
            if hint:
                result.error = f"{result.error} ({hint})"
    result.logs = logs.getvalue()[:MAX_LOG_CHARS]
    result.ended_at = int(time.time() * 1000)
    return result

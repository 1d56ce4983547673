"""The fluent tracking API: module-level functions over a process-wide client.

>>> import loopline, tempfile
>>> from pathlib import Path
>>> from loopline.config import Settings, reset_settings
>>> reset_settings(Settings(home=Path(tempfile.mkdtemp())))  # this example's own store
>>> loopline.set_tracking_uri(None)  # (re)connect to it
>>> _ = loopline.set_experiment("fluent-doc")
>>> with loopline.start_run(run_name="demo") as run:
...     _ = loopline.log_param("model", "rf")
...     for step in range(3):
...         loopline.log_metric("loss", 1.0 / (step + 1), step=step)
>>> loopline.get_run(run.info.run_id).data.metrics["loss"]
0.3333333333333333
>>> loopline.search_runs(filter_string="params.model = 'rf'")["run_id"].tolist() == [run.info.run_id]
True

Runs started in a thread belong to that thread's stack; a thread with no run of
its own logs to the run most recently started in the main thread.

At exit, the main thread's open runs end as FINISHED, or FAILED (KILLED for
Ctrl-C) when an uncaught exception ends the program, and everything buffered is
stored. A child process made by ``fork`` gets a client of its own and leaves the
runs it inherited for its parent to end.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from loopline.config import get_settings, reset_settings
from loopline.errors import InvalidArgumentError, InvalidStateError, NotFoundError
from loopline.tracking.entities import RunStatus

if TYPE_CHECKING:
    from types import TracebackType

    import pandas as pd

    from loopline.client.client import Client
    from loopline.tracking.entities import Experiment, Metric, Run, RunData, RunInfo

__all__ = [
    "ActiveRun",
    "active_run",
    "delete_tag",
    "end_run",
    "flush",
    "get_client",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_client: Client | None = None
_client_lock = threading.Lock()
_experiment_id: str | None = None
_local = threading.local()
_main_stack: list[ActiveRun] = []
_main_ident = threading.main_thread().ident
_last: ActiveRun | None = None
_valid_keys: set[str] = set()
_get_ident = threading.get_ident
_time = time.time


def get_client() -> Client:
    """The process-wide client the fluent functions use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                from loopline.client.client import Client

                _client = Client()
    return _client


def set_tracking_uri(uri: str | None) -> None:
    """Point the fluent API at a server (``http://...``), a database URL, or None for the default.

    What the previous store's client still buffered is stored first; an error doing
    so is raised, after the switch.
    """
    global _client, _experiment_id
    client, _client, _experiment_id = _client, None, None
    reset_settings(get_settings().with_(tracking_uri=uri))
    if client is not None:
        client.close()


def get_tracking_uri() -> str:
    settings = get_settings()
    return settings.tracking_uri or settings.metadata_url


def _stack() -> list[ActiveRun]:
    if _get_ident() == _main_ident:
        return _main_stack
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class ActiveRun:
    """The run a ``with start_run():`` block logs to; ends it on exit."""

    def __init__(self, info: RunInfo) -> None:
        self.info = info
        self.pid = os.getpid()

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def data(self) -> RunData:
        return get_client().get_run(self.info.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if self in _stack():
            end_run(status.value, _run=self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.run_id} {self.info.run_name!r}>"


def set_experiment(name: str | None = None, *, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current for new runs, creating it (by name) when missing."""
    global _experiment_id
    client = get_client()
    if experiment_id is not None:
        exp = client.get_experiment(experiment_id)
    elif name:
        found = client.get_experiment_by_name(name)
        if found is None:
            from loopline.errors import AlreadyExistsError

            # Another process may create it meanwhile: then it is found below.
            with contextlib.suppress(AlreadyExistsError):
                client.create_experiment(name)
            found = client.get_experiment_by_name(name)
        if found is None:
            raise NotFoundError(f"experiment {name!r} could not be created")
        exp = found
    else:
        raise InvalidArgumentError("set_experiment needs a name or an experiment_id")
    if exp.lifecycle_stage != "active":
        raise InvalidStateError(
            f"experiment {exp.name!r} is deleted",
            hint=f"restore it with `loopline experiments restore {exp.experiment_id}`",
        )
    _experiment_id = exp.experiment_id
    return exp


def start_run(
    run_id: str | None = None,
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it active.

    A run started while another is active must say ``nested=True``; it becomes a
    child of the active one.
    """
    global _last
    stack = _stack()
    if stack and not nested:
        raise InvalidStateError(
            f"run {stack[-1].info.run_id} is already active",
            hint="end it with end_run(), or pass nested=True to start a child run",
        )
    client = get_client()
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise InvalidStateError(f"run {run_id} is deleted; restore it first")
        client.update_run(run_id, status=RunStatus.RUNNING.value)
        client._params[run_id] = dict(run.data.params)
        info = run.info
        info.status = RunStatus.RUNNING.value
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack else None)
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if description:
            all_tags["loopline.note"] = description
        info = client.new_run(
            experiment_id or _experiment_id or "0",
            run_name=run_name,
            tags=all_tags,
            parent_run_id=parent,
        )
    active = ActiveRun(info)
    stack.append(active)
    _last = active
    return active


def end_run(status: str = "FINISHED", *, _run: ActiveRun | None = None) -> None:
    """End the active run and start storing what was logged to it.

    It returns without waiting for the write: reads through loopline (``get_run``,
    ``search_runs``) wait for it, ``flush()`` waits for it, and so does the
    process's exit. A write error is raised by the next call or ``flush()``.
    """
    stack = _stack()
    if not stack:
        return
    run = _run or stack[-1]
    # Ending a parent ends the children still open above it.
    while stack:
        top = stack.pop()
        get_client().set_terminated(top.info.run_id, status, wait=False)
        top.info.status = status
        if top is run:
            break


def active_run() -> ActiveRun | None:
    """The run logging calls go to, or None."""
    stack = _stack()
    if stack:
        return stack[-1]
    return _main_stack[-1] if _main_stack else None


def last_active_run() -> Run | None:
    """The most recently started run (even when it has ended)."""
    return get_run(_last.info.run_id) if _last is not None else None


def _run_id() -> str:
    if _get_ident() == _main_ident:
        stack = _main_stack
    else:
        stack = getattr(_local, "stack", None) or _main_stack
    if stack:
        return stack[-1].info.run_id
    return start_run().info.run_id


def _check_key(key: str, what: str) -> None:
    if key not in _valid_keys:
        from loopline.tracking.service import check_key

        check_key(key, what)
        _valid_keys.add(key)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    *,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Log one point of a metric; returns at once (the write happens in the background).

    NaN and infinities are kept as they are.
    """
    # The hot path: a handful of attribute reads and one append (BatchWriter.metric,
    # inlined: the call would cost a fifth of the total).
    if key not in _valid_keys:
        _check_key(key, "metric")
    client = _client or get_client()
    writer = client._writer or client.writer
    if writer.error is not None:
        writer.raise_pending()
    queue = writer.queue
    queue.append(
        (
            run_id or _run_id(),
            key,
            float(value),
            int(timestamp or _time() * 1000),
            int(step or 0),  # numpy integers would be stored as bytes
        )
    )
    if len(queue) > writer.high_water and not writer._wake.is_set():
        writer._wake.set()


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    *,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    ts = timestamp or int(time.time() * 1000)
    rid = run_id or _run_id()
    for key, value in metrics.items():
        log_metric(key, value, step, timestamp=ts, run_id=rid)


def log_param(key: str, value: Any, *, run_id: str | None = None) -> Any:
    """Log a param; logging it again with a different value is refused at once.

    Returns ``value``, as MLflow does.
    """
    get_client().log_param(run_id or _run_id(), key, value)
    return value


def log_params(params: dict[str, Any], *, run_id: str | None = None) -> None:
    rid = run_id or _run_id()
    for key, value in params.items():
        log_param(key, value, run_id=rid)


def set_tag(key: str, value: Any, *, run_id: str | None = None) -> None:
    get_client().set_tag(run_id or _run_id(), key, value)


def set_tags(tags: dict[str, Any], *, run_id: str | None = None) -> None:
    rid = run_id or _run_id()
    for key, value in tags.items():
        set_tag(key, value, run_id=rid)


def delete_tag(key: str, *, run_id: str | None = None) -> None:
    get_client().delete_tag(run_id or _run_id(), key)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a local file among the active run's artifacts (under ``artifact_path``)."""
    get_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a folder's files among the active run's artifacts."""
    get_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    get_client().log_text(_run_id(), text, artifact_file)


def log_dict(dictionary: dict[str, Any], artifact_file: str) -> None:
    """Store a dict as JSON (or YAML for ``.yaml``/``.yml`` names)."""
    get_client().log_dict(_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Store a matplotlib figure as an image artifact."""
    get_client().log_figure(_run_id(), figure, artifact_file)


def get_run(run_id: str) -> Run:
    return get_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return get_client().get_metric_history(run_id, key)


def flush() -> None:
    """Store everything logged so far; raises the error of a failed background write."""
    if _client is not None:
        _client.flush()


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    *,
    max_results: int = 100_000,
    view: str = "active",
    experiment_names: list[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
) -> pd.DataFrame | list[Run]:
    """Runs matching an MLflow-syntax filter, as a DataFrame (default) or a list.

    ``filter_string`` example: ``"metrics.auc > 0.9 and params.model = 'rf'"``;
    ``order_by`` example: ``["metrics.auc DESC"]``.
    """
    client = get_client()
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise NotFoundError(f"experiment {name!r} does not exist")
        ids.append(exp.experiment_id)
    if not ids:
        ids = [_experiment_id or "0"]
    if output_format == "list":
        return client.search_all_runs(
            ids, filter_string, order_by, view=view, max_results=max_results
        )
    return client.search_runs_df(ids, filter_string, order_by, view=view, max_results=max_results)


def _exit_status() -> RunStatus:
    """FINISHED, unless an uncaught exception is ending the program."""
    exc = getattr(sys, "last_value", None)
    if exc is None:
        return RunStatus.FINISHED
    if isinstance(exc, KeyboardInterrupt):
        return RunStatus.KILLED
    if isinstance(exc, SystemExit):
        return RunStatus.FINISHED if exc.code in (None, 0) else RunStatus.FAILED
    return RunStatus.FAILED


def _at_exit() -> None:
    # Finish what is still open, as MLflow does, and never lose buffered points.
    try:
        status = _exit_status().value
        pid = os.getpid()
        while _main_stack:
            if _main_stack[-1].pid == pid:
                end_run(status)
            else:  # inherited through fork: the parent ends it
                _main_stack.pop()
        if _client is not None:
            _client.close()
    except Exception as exc:  # pragma: no cover - reported, the process is ending anyway
        print(f"loopline: could not store buffered tracking data at exit: {exc}", file=sys.stderr)


def _after_fork_in_child() -> None:
    # The parent's client holds the parent's connections and buffer: start afresh.
    global _client, _client_lock, _main_ident
    _client = None
    _client_lock = threading.Lock()
    _main_ident = threading.get_ident()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

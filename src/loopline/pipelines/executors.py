"""Executors: where steps run. ``inline`` (this process, one at a time: breakpoints
work), ``local`` (a pool of worker processes, independent steps in parallel), ``ray``
(Ray tasks with the step's resources; Ray is imported only here, when asked for).

Each executor takes a picklable callable and its argument and returns a
:class:`concurrent.futures.Future`; the runner and the sweep only wait on futures.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.pipelines.core import Resources

__all__ = [
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "open_executor",
]

EXECUTORS = ("inline", "local", "ray")


class Executor(abc.ABC):
    """Runs ``fn(arg)`` somewhere; ``slots`` is how many may run at once."""

    name: str = ""
    slots: int = 1

    @abc.abstractmethod
    def submit(
        self, fn: Callable[[Any], Any], arg: Any, resources: Resources | None = None
    ) -> Future[Any]: ...

    def cancel(self, future: Future[Any]) -> None:  # noqa: B027 - optional
        """Stop a running call if the executor can (Ray can; processes finish)."""

    def check(self, resources: Resources, where: str) -> None:  # noqa: B027 - optional
        """Refuse, before anything runs, a request the executor can never satisfy."""

    def shutdown(self) -> None:  # noqa: B027 - optional
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()


class InlineExecutor(Executor):
    """Runs each call at once, in this process and thread."""

    name = "inline"

    def submit(
        self, fn: Callable[[Any], Any], arg: Any, resources: Resources | None = None
    ) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(arg))
        except BaseException as exc:  # the runner reads it from the future
            future.set_exception(exc)
        return future


def _pool_context() -> Any:
    # fork starts a worker in milliseconds, and the workers share the parent's
    # imports (the pipeline file, numpy...). It is only safe while this process has
    # no other thread (a lock held by one would stay locked in the child); then
    # forkserver, which forks from a clean single-threaded server.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["loopline.pipelines.worker"])
        return ctx
    return multiprocessing.get_context("spawn")


def _noop(_: Any) -> int:
    return os.getpid()


def _in_env(task: tuple[dict[str, str], Callable[[Any], Any], Any]) -> Any:
    """Run ``fn(arg)`` with the driver's environment as it was at submit time.

    A forkserver's workers inherit the environment of the moment it started, not
    the driver's current one (credentials or flags set since would be missing).
    """
    env, fn, arg = task
    if os.environ != env:
        os.environ.clear()
        os.environ.update(env)
    return fn(arg)


class LocalExecutor(Executor):
    """A pool of worker processes (one per core unless ``workers`` says otherwise)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.slots = workers or max(1, len(os.sched_getaffinity(0)))
        self._pool = ProcessPoolExecutor(max_workers=self.slots, mp_context=_pool_context())

    def warm_up(self) -> None:
        """Start the workers now (before this process starts threads of its own)."""
        for future in [self._pool.submit(_noop, None) for _ in range(self.slots)]:
            future.result()

    def submit(
        self, fn: Callable[[Any], Any], arg: Any, resources: Resources | None = None
    ) -> Future[Any]:
        return self._pool.submit(_in_env, (dict(os.environ), fn, arg))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Ray tasks, with each step's resources as Ray's ``num_cpus``/``num_gpus``/``memory``.

    Joins the cluster at ``address`` (or ``RAY_ADDRESS``), else starts a local Ray;
    a Ray already initialised in this process is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingDependencyError("ray", "ray") from exc
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if address:
                kwargs["address"] = address
            ray.init(**kwargs)
        self.slots = max(1, int(ray.available_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        self._refs: dict[int, Any] = {}

    def check(self, resources: Resources, where: str) -> None:
        # Ray queues a task no node can take forever (with a warning in its logs).
        total = self._ray.cluster_resources()  # type: ignore[no-untyped-call]
        asked = {"CPU": resources.cpu, "GPU": resources.gpu, "memory": resources.memory}
        for key, amount in asked.items():
            if amount is not None and amount > total.get(key, 0):
                have = total.get(key, 0)
                raise InvalidArgumentError(
                    f"step {where} asks for {key} {amount:g}; the Ray cluster has {have:g}",
                    hint="lower the step's resources=, or join a larger cluster (--ray-address)",
                )

    def submit(
        self, fn: Callable[[Any], Any], arg: Any, resources: Resources | None = None
    ) -> Future[Any]:
        options: dict[str, Any] = {"max_retries": 0}
        if resources is not None:
            if resources.cpu is not None:
                options["num_cpus"] = resources.cpu
            if resources.gpu is not None:
                options["num_gpus"] = resources.gpu
            if resources.memory is not None:
                options["memory"] = resources.memory
        remote = self._ray.remote(fn).options(**options)
        ref = remote.remote(arg)
        future: Future[Any] = ref.future()
        self._refs[id(future)] = ref
        return future

    def cancel(self, future: Future[Any]) -> None:
        ref = self._refs.pop(id(future), None)
        if ref is not None:
            self._ray.cancel(ref, force=True)


def open_executor(name: str, *, ray_address: str | None = None) -> Executor:
    """The executor called ``name``."""
    if name == "inline":
        return InlineExecutor()
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address)
    raise InvalidArgumentError(
        f"unknown executor {name!r}", hint=f"use one of {', '.join(EXECUTORS)}"
    )

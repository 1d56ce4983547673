"""``@step`` and ``@pipeline``: plain functions, and the DAG traced from the data between them.

Calling a pipeline's function with a tracer active turns every step call into a
node; what a step call returns is an :class:`Output` placeholder, and passing it to
another step is an edge. Using a placeholder as a value (``out + 1``, ``out["x"]``,
``if out:``) is an error naming the line, raised while tracing, before any step
runs. Outside a pipeline a step is its plain function:

>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> double(21)
42
>>> @pipeline
... def twice(x: int = 1) -> None:
...     double(double(x))
>>> dag = twice.build({"x": 3})
>>> [(n.name, sorted(n.upstream)) for n in dag.nodes]
[('double', []), ('double_2', ['double'])]
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from loopline.pipelines._errors import PipelineDefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopline.pipelines.runner import PipelineRun

__all__ = ["Dag", "Node", "Output", "Pipeline", "Step", "pipeline", "step"]

F = TypeVar("F", bound="Callable[..., Any]")
_tracer: contextvars.ContextVar[_Tracer | None] = contextvars.ContextVar(
    "loopline_pipeline_tracer", default=None
)


def source_of(fn: Callable[..., Any]) -> str:
    """``file.py:LINE`` where ``fn`` is defined."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", repr(fn))
    return f"{_short(code.co_filename)}:{code.co_firstlineno}"


def _short(path: str) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _caller_line(depth: int = 2) -> str:
    frame = sys._getframe(depth)
    # Skip frames of this module (operators call through helpers here).
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"


@dataclass(frozen=True, slots=True)
class Resources:
    """What a step asks of the machine; the Ray executor passes it on to Ray."""

    cpu: float | None = None
    gpu: float | None = None
    memory: int | None = None
    """Bytes."""

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, where: str) -> Resources:
        if not raw:
            return cls()
        unknown = set(raw) - {"cpu", "gpu", "memory"}
        if unknown:
            raise PipelineDefinitionError(
                f"step {where}: unknown resources {sorted(unknown)}",
                hint='use resources={"cpu": 2, "memory": "4GB", "gpu": 1}',
            )
        memory = raw.get("memory")
        return cls(
            cpu=None if raw.get("cpu") is None else float(raw["cpu"]),
            gpu=None if raw.get("gpu") is None else float(raw["gpu"]),
            memory=None if memory is None else parse_bytes(memory, where),
        )


def parse_bytes(value: int | str, where: str) -> int:
    """``"4GB"``, ``"512MiB"``, ``1024`` -> bytes.

    >>> parse_bytes("4GB", "x"), parse_bytes("512MiB", "x"), parse_bytes(10, "x")
    (4000000000, 536870912, 10)
    """
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().replace(" ", "")
    units = {"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "KB": 1000, "MB": 1000**2}
    units |= {"GB": 1000**3, "TB": 1000**4, "TIB": 1024**4, "B": 1}
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * factor)
            except ValueError:
                break
    if text.isdigit():
        return int(text)
    raise PipelineDefinitionError(
        f"step {where}: memory {value!r} is not a size", hint='write it like "4GB" or "512MiB"'
    )


class Step:
    """A function made a pipeline step (see :func:`step`)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        backoff: float = 1.0,
        timeout: float | None = None,
        resources: dict[str, Any] | None = None,
        outputs: int | tuple[str, ...] | None = None,
        allow_pickle: bool = False,
        env: list[str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.source = source_of(fn)
        if retries < 0 or backoff < 0 or (timeout is not None and timeout <= 0):
            raise PipelineDefinitionError(
                f"step {self.name!r} ({self.source}): retries and backoff must be >= 0, timeout > 0"
            )
        self.cache = cache
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.resources = Resources.parse(resources, f"{self.name!r} ({self.source})")
        if isinstance(outputs, int):
            outputs = tuple(str(i) for i in range(outputs))
        self.outputs: tuple[str, ...] | None = outputs
        self.allow_pickle = allow_pickle
        self.env = list(env or [])
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = _tracer.get()
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add(self, args, kwargs, _caller_line())

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.source})>"


@overload
def step(fn: F, /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    backoff: float = 1.0,
    timeout: float | None = None,
    resources: dict[str, Any] | None = None,
    outputs: int | tuple[str, ...] | None = None,
    allow_pickle: bool = False,
    env: list[str] | None = None,
) -> Callable[[F], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a pipeline step.

    Options: ``cache=False`` (always run), ``retries`` with exponential ``backoff``
    (seconds), ``timeout`` (seconds), ``resources={"cpu": 2, "memory": "4GB",
    "gpu": 1}`` (passed to Ray), ``outputs=2`` or ``outputs=("X", "y")`` for a step
    returning a tuple the pipeline unpacks, ``allow_pickle=True`` to store outputs
    no materializer knows by pickling them, ``env=["scikit-learn"]`` for packages
    whose installed versions enter the cache key.

    >>> @step(retries=2, resources={"cpu": 2})
    ... def fit(x: int) -> int:
    ...     return x
    >>> fit.retries, fit.resources.cpu
    (2, 2.0)
    """
    if fn is not None:
        return Step(fn, **options)

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, **options)

    return wrap


class Output:
    """What a step call returns inside a pipeline: a reference to a future value."""

    __slots__ = ("index", "node")

    def __init__(self, node: Node, index: str | None = None) -> None:
        self.node = node
        self.index = index

    @property
    def label(self) -> str:
        return self.node.name if self.index is None else f"{self.node.name}[{self.index}]"

    def _misuse(self, what: str) -> PipelineDefinitionError:
        return PipelineDefinitionError(
            f"{_caller_line(3)}: the output of step {self.node.name!r} is used as a plain "
            f"value ({what}) in the pipeline's body; its value only exists when the step runs",
            hint="pass it to another @loopline.step and do the work there",
        )

    def __iter__(self) -> Any:
        outputs = self.node.step.outputs
        if outputs is None or self.index is not None:
            raise self._misuse("unpacking")
        return iter([Output(self.node, name) for name in outputs])

    def __getitem__(self, key: Any) -> Output:
        outputs = self.node.step.outputs
        if outputs is not None and self.index is None and str(key) in outputs:
            return Output(self.node, str(key))
        raise self._misuse(f"[{key!r}]")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._misuse(f".{name}")

    def __bool__(self) -> bool:
        raise self._misuse("truth test")

    def __len__(self) -> int:
        raise self._misuse("len()")

    def __repr__(self) -> str:
        return f"<output of step {self.label}>"


def _operator(symbol: str) -> Callable[..., Any]:
    def misuse(self: Output, *_: Any) -> Any:
        raise self._misuse(f"operator {symbol}")

    return misuse


for _name, _symbol in {
    "__add__": "+",
    "__radd__": "+",
    "__sub__": "-",
    "__rsub__": "-",
    "__mul__": "*",
    "__rmul__": "*",
    "__truediv__": "/",
    "__rtruediv__": "/",
    "__lt__": "<",
    "__le__": "<=",
    "__gt__": ">",
    "__ge__": ">=",
    "__float__": "float()",
    "__int__": "int()",
    "__index__": "index",
    "__contains__": "in",
}.items():
    setattr(Output, _name, _operator(_symbol))


@dataclass(slots=True)
class Arg:
    """One argument of a node: a constant (JSON), another node's output, or a dataset."""

    kind: str  # const | output | dataset
    value: Any = None
    node: str = ""
    index: str | None = None


@dataclass(slots=True)
class Node:
    """One step call in a pipeline."""

    name: str
    step: Step
    args: dict[str, Arg]
    line: str
    upstream: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step": self.step.name,
            "source": self.step.source,
            "line": self.line,
            "upstream": sorted(self.upstream),
            "args": {k: dataclasses.asdict(a) for k, a in self.args.items()},
        }


@dataclass(slots=True)
class Dag:
    """The traced pipeline: nodes in call order (a topological order)."""

    pipeline: str
    nodes: list[Node]
    params: dict[str, Any]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or not."""
        found: set[str] = set()
        for node in self.nodes:  # call order: upstream nodes come first
            if name in node.upstream or node.upstream & found:
                found.add(node.name)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "nodes": [n.to_dict() for n in self.nodes]}


def _is_dataset_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.split(".")[-1] in ("DatasetVersion", "DatasetVersion | None")
    return getattr(annotation, "__name__", "") == "DatasetVersion"


class _Tracer:
    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: list[Node] = []
        self._names: dict[str, int] = {}

    def add(self, step_obj: Step, args: tuple[Any, ...], kwargs: dict[str, Any], line: str) -> Any:
        where = f"step {step_obj.name!r} called at {line}"
        try:
            bound = step_obj.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(
                f"{where}: {exc}", hint=f"see its definition at {step_obj.source}"
            ) from None
        bound.apply_defaults()
        count = self._names.get(step_obj.name, 0) + 1
        self._names[step_obj.name] = count
        name = step_obj.name if count == 1 else f"{step_obj.name}_{count}"
        node = Node(name=name, step=step_obj, args={}, line=line)
        for key, value in bound.arguments.items():
            kind = step_obj.signature.parameters[key].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"{where}: steps take named parameters, not *args or **kwargs ({key})"
                )
            node.args[key] = self._arg(value, key, where, step_obj)
            if node.args[key].kind == "output":
                node.upstream.add(node.args[key].node)
        self.nodes.append(node)
        if step_obj.outputs is not None:
            return tuple(Output(node, o) for o in step_obj.outputs)
        return Output(node)

    def _arg(self, value: Any, key: str, where: str, step_obj: Step) -> Arg:
        if isinstance(value, Output):
            if value.node.step.outputs is not None and value.index is None:
                raise PipelineDefinitionError(
                    f"{where}: argument {key!r} gets all {len(value.node.step.outputs)} "
                    f"outputs of step {value.node.name!r}; unpack them first "
                    "(a, b = step(...))"
                )
            return Arg("output", node=value.node.name, index=value.index)
        annotation = step_obj.signature.parameters[key].annotation
        ref = getattr(value, "ref", None)
        if _is_dataset_annotation(annotation) or (
            ref is not None and type(value).__name__ == "DatasetVersion"
        ):
            return Arg("dataset", value=str(ref if ref is not None else value))
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise PipelineDefinitionError(
                f"{where}: argument {key!r} is a {type(value).__name__}, which is neither "
                "another step's output nor a JSON value",
                hint="create it inside a step, or pass a JSON-able constant",
            ) from None
        return Arg("const", value=value)


def coerce_param(name: str, text: str, annotation: Any) -> Any:
    """A ``--param`` string converted to the parameter's annotated type.

    >>> coerce_param("lr", "0.1", float), coerce_param("n", "3", "int"), coerce_param("f", "yes", bool)
    (0.1, 3, True)
    >>> coerce_param("cols", '["a", "b"]', list)
    ['a', 'b']
    """
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kind = str(kind).replace(" ", "").split("|")[0]
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        if kind in ("str", "DatasetVersion"):
            return text
        if kind in ("list", "dict") or kind.startswith(("list[", "dict[")):
            return json.loads(text)
    except ValueError:
        raise PipelineDefinitionError(f"parameter {name!r} expects {kind}, got {text!r}") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


class Pipeline:
    """A function made a pipeline (see :func:`pipeline`)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        executor: str = "local",
        env: list[str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.source = source_of(fn)
        self.executor = executor
        self.env = list(env or [])
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, **params: Any) -> PipelineRun:
        """Run the pipeline with these parameters (see :meth:`run`)."""
        return self.run(params=params)

    def resolve_params(
        self, params: dict[str, Any] | None = None, text: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Defaults, then ``params``, then ``text`` (``--param`` strings) converted by type."""
        values: dict[str, Any] = {}
        given = dict(params or {})
        for key, raw in (text or {}).items():
            if key in self.signature.parameters:
                given[key] = coerce_param(key, raw, self.signature.parameters[key].annotation)
            else:
                given[key] = raw
        unknown = set(given) - set(self.signature.parameters)
        if unknown:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} ({self.source}) has no parameter "
                f"{', '.join(sorted(unknown))}",
                hint=f"its parameters: {', '.join(self.signature.parameters) or 'none'}",
            )
        for key, parameter in self.signature.parameters.items():
            if key in given:
                values[key] = given[key]
            elif parameter.default is not inspect.Parameter.empty:
                values[key] = parameter.default
            else:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r} ({self.source}) needs parameter {key!r}",
                    hint=f"pass --param {key}=VALUE (or params={{{key!r}: ...}})",
                )
        return values

    def build(self, params: dict[str, Any] | None = None) -> Dag:
        """Trace the pipeline's body into a :class:`Dag` (no step runs)."""
        values = self.resolve_params(params)
        tracer = _Tracer(self.name)
        token = _tracer.set(tracer)
        try:
            self.fn(**values)
        finally:
            _tracer.reset(token)
        if not tracer.nodes:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} ({self.source}) calls no step",
                hint="decorate the functions it calls with @loopline.step",
            )
        return Dag(self.name, tracer.nodes, values)

    def run(
        self,
        *,
        params: dict[str, Any] | None = None,
        executor: str | None = None,
        cache: bool = True,
        thresholds: dict[str, str] | None = None,
        ray_address: str | None = None,
        target: str = "",
    ) -> PipelineRun:
        """Run the pipeline: a tracked run with a child run per step; returns when done.

        Raises :class:`~loopline.pipelines.PipelineFailedError` when a step failed
        (after independent branches finished) and :class:`GateFailedError` when a
        validation gate did not pass.
        """
        from loopline.pipelines.runner import Runner

        runner = Runner(
            self,
            params=params,
            executor=executor or self.executor,
            cache=cache,
            thresholds=thresholds,
            ray_address=ray_address,
            target=target,
        )
        return runner.run()

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.source})>"


@overload
def pipeline(fn: F, /) -> Pipeline: ...
@overload
def pipeline(
    *, name: str | None = None, executor: str = "local", env: list[str] | None = None
) -> Callable[[F], Pipeline]: ...


def pipeline(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a pipeline: its parameters are the pipeline's, its body calls steps.

    ``executor`` is the default executor (``inline``, ``local`` or ``ray``); ``env``
    lists packages whose installed versions enter every step's cache key.
    """
    if fn is not None:
        return Pipeline(fn, **options)

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, **options)

    return wrap

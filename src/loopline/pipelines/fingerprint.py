"""Cache keys: a step's code (and the project code it calls), params, inputs, environment.

The code digest covers the step function's source and, transitively, the source of
every function and class it refers to by a global name that is defined in project
code: a module outside the standard library, site-packages and loopline. So editing
a helper that a step calls invalidates the step; upgrading a library does not,
unless the package is declared in ``env=[...]``.

>>> def helper(x):
...     return x + 1
>>> def fit(x):
...     return helper(x)
>>> code_digest(fit) == code_digest(fit)
True
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
import sysconfig
import types
from typing import Any

import orjson

__all__ = ["cache_key", "code_digest", "env_fingerprint"]

_LIBRARY_PATHS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_LOOPLINE_PATH = __file__.rsplit("/pipelines/", 1)[0]


def _is_project(obj: Any) -> bool:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if path is None:
        # Functions of a file run as a script or loaded by path have a module too;
        # objects without a file (builtins) are not project code.
        return getattr(obj, "__module__", None) == "__main__"
    return not path.startswith(_LIBRARY_PATHS) and not path.startswith(_LOOPLINE_PATH)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return repr(code.co_code) if code is not None else repr(obj)


def _referenced(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _referenced(const)
    return names


def _unwrap(obj: Any) -> Any:
    # A Step or Pipeline object: its function is the code.
    return getattr(obj, "fn", obj) if type(obj).__name__ in ("Step", "Pipeline") else obj


@functools.lru_cache(maxsize=4096)
def _digest_cached(fn: Any) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    seen: set[int] = set()
    stack = [fn]
    while stack:
        obj = _unwrap(stack.pop())
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        hasher.update(_source(obj).encode())
        code = getattr(obj, "__code__", None)
        if isinstance(obj, type):
            members = [m for m in vars(obj).values() if inspect.isfunction(m)]
            stack.extend(members)
            continue
        if code is None:
            continue
        scope = getattr(obj, "__globals__", {})
        for name in sorted(_referenced(code)):
            target = _unwrap(scope.get(name))
            if (inspect.isfunction(target) or inspect.isclass(target)) and _is_project(target):
                stack.append(target)
    return hasher.hexdigest()


def code_digest(fn: Any) -> str:
    """A digest of ``fn``'s source and of the project code it reaches."""
    try:
        return _digest_cached(fn)
    except TypeError:  # unhashable callable
        return _digest_cached.__wrapped__(fn)


@functools.lru_cache(maxsize=256)
def env_fingerprint(packages: tuple[str, ...] = ()) -> str:
    """Python's version, loopline's, and the installed versions of ``packages``."""
    from importlib import metadata

    from loopline._version import __version__

    parts = [f"python={sys.version_info.major}.{sys.version_info.minor}", f"loopline={__version__}"]
    for name in sorted(set(packages)):
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=absent")
    return ";".join(parts)


def cache_key(
    step: str, code: str, params: dict[str, Any], inputs: dict[str, str], env: str
) -> str:
    """The key a step's outputs are cached under.

    >>> cache_key("fit", "c0de", {"lr": 0.1}, {"X": "blake3:ab"}, "python=3.11")[:7]
    'blake2:'
    """
    doc = {"step": step, "code": code, "params": params, "inputs": inputs, "env": env}
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return "blake2:" + hashlib.blake2b(body, digest_size=32).hexdigest()

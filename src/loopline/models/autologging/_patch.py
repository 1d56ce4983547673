"""Patching ``fit`` and ``train`` in place, reversibly, without wrapt.

Every patch records the original; :func:`unpatch_all` puts them all back. A
thread-local depth keeps nested calls (``Pipeline.fit`` calling each step's
``fit``, ``XGBClassifier.fit`` calling ``super().fit``) from logging twice: only
the outermost call logs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["guard", "is_nested", "patch", "patched", "unpatch_all", "warn_failure"]

log = logging.getLogger("loopline.autolog")
_PATCHES: dict[tuple[int, str], tuple[Any, str, Any]] = {}
_lock = threading.Lock()
_local = threading.local()
MARK = "__loopline_autolog__"


def patch(owner: Any, attr: str, make: Callable[[Any], Callable[..., Any]]) -> bool:
    """Replace ``owner.attr`` (a class's own attribute, or a module's) by ``make(original)``.

    Does nothing when already patched; returns True when it patched.
    """
    key = (id(owner), attr)
    with _lock:
        if key in _PATCHES:
            return False
        original = vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr)
        if original is None or getattr(original, MARK, False):
            return False
        wrapper = functools.wraps(original)(make(original))
        setattr(wrapper, MARK, True)
        setattr(owner, attr, wrapper)
        _PATCHES[key] = (owner, attr, original)
        return True


def unpatch_all() -> int:
    """Restore every original; the number restored."""
    with _lock:
        for owner, attr, original in _PATCHES.values():
            setattr(owner, attr, original)
        count = len(_PATCHES)
        _PATCHES.clear()
        return count


def patched() -> list[str]:
    """``owner.attr`` names currently patched (for tests and messages)."""
    return sorted(
        f"{getattr(owner, '__qualname__', getattr(owner, '__name__', owner))}.{attr}"
        for owner, attr, _ in _PATCHES.values()
    )


def is_nested() -> bool:
    return bool(getattr(_local, "depth", 0))


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Mark this thread as inside a logged call."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def warn_failure(what: str, exc: BaseException) -> None:
    """Autologging never breaks training: a logging failure is reported, not raised."""
    log.warning("loopline autolog could not log %s: %s", what, exc)

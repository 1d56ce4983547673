"""Validation of user-supplied relative paths (artifact paths, dataset paths, blob keys).

>>> safe_relpath("plots/roc.png")
'plots/roc.png'
>>> safe_relpath("./a//b/")
'a/b'
>>> safe_relpath("../etc/passwd")
Traceback (most recent call last):
...
loopline.errors.UnsafePathError: path '../etc/passwd' leaves its root ('..' is not allowed) (give a path relative to the artifact root, without '..')
"""

from __future__ import annotations

from loopline.errors import UnsafePathError

__all__ = ["MAX_PATH_LENGTH", "safe_relpath"]

MAX_PATH_LENGTH = 1000


def safe_relpath(path: str, *, allow_empty: bool = False) -> str:
    """Normalise a relative POSIX path, refusing anything that could escape its root."""
    hint = "give a path relative to the artifact root, without '..'"
    if "\x00" in path:
        raise UnsafePathError(f"path {path!r} contains a NUL byte", hint=hint)
    if len(path) > MAX_PATH_LENGTH:
        raise UnsafePathError(f"path is longer than {MAX_PATH_LENGTH} characters", hint=hint)
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise UnsafePathError(f"path {path!r} is absolute", hint=hint)
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"path {path!r} leaves its root ('..' is not allowed)", hint=hint)
    normal = "/".join(parts)
    if not normal and not allow_empty:
        raise UnsafePathError("path is empty", hint=hint)
    return normal

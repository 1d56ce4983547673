"""``diff``: what changed between two versions, file by file, and in tabular files' rows and columns.

Row counts and schemas come from the versions' recorded schemas, so a diff reads
two manifests and no data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.data.entities import Diff, TableChange
from loopline.data.status import compare

if TYPE_CHECKING:
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion

__all__ = ["diff", "table_changes"]


def diff(service: DataService, a: str | DatasetVersion, b: str | DatasetVersion) -> Diff:
    """Changes from version ``a`` to version ``b`` (references or versions)."""
    old, new = service.resolve(a), service.resolve(b)
    changes, unchanged = compare(old.manifest, new.manifest)
    changed = {c.path for c in changes}
    return Diff(
        old.ref, new.ref, changes, table_changes(old.schema, new.schema, changed), unchanged
    )


def _columns(schema: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["type"] for c in schema.get("columns", [])}


def table_changes(old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> list[TableChange]:
    """Row and column changes of the tabular files among ``changed`` paths.

    >>> old = {"t.csv": {"rows": 10, "columns": [{"name": "a", "type": "int64"}]}}
    >>> new = {"t.csv": {"rows": 12, "columns": [{"name": "a", "type": "double"},
    ...                                           {"name": "b", "type": "string"}]}}
    >>> change = table_changes(old, new, {"t.csv"})[0]
    >>> change.old_rows, change.new_rows, change.added_columns, change.retyped_columns
    (10, 12, ['b'], [('a', 'int64', 'double')])
    """
    result: list[TableChange] = []
    for path in sorted(changed & (set(old) | set(new))):
        before, after = old.get(path, {}), new.get(path, {})
        cols_a, cols_b = _columns(before), _columns(after)
        result.append(
            TableChange(
                path,
                before.get("rows"),
                after.get("rows"),
                added_columns=[c for c in cols_b if c not in cols_a] if before else [],
                removed_columns=[c for c in cols_a if c not in cols_b] if after else [],
                retyped_columns=[
                    (c, cols_a[c], cols_b[c])
                    for c in cols_b
                    if c in cols_a and cols_a[c] != cols_b[c]
                ],
            )
        )
    return result

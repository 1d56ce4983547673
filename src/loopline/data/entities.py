"""What the data SDK returns besides versions: diffs, statuses, lineage, reports.

:class:`~loopline.data.version.DatasetVersion` lives in its own module: ``add``
and ``status`` return one on the CLI's fast path, which should not pay for
building these dataclasses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Change",
    "CheckoutResult",
    "Diff",
    "GcResult",
    "Lineage",
    "LineageRun",
    "ModelUse",
    "Status",
    "TableChange",
    "TransferResult",
    "VerifyReport",
]


@dataclass(frozen=True, slots=True)
class Change:
    """A file added, removed or modified between two states (sizes None where absent)."""

    path: str
    change: str
    """``added``, ``removed`` or ``modified``."""
    old_size: int | None
    new_size: int | None


@dataclass(frozen=True, slots=True)
class TableChange:
    """How a tabular file's rows and columns changed between two versions."""

    path: str
    old_rows: int | None
    new_rows: int | None
    added_columns: list[str] = field(default_factory=list)
    removed_columns: list[str] = field(default_factory=list)
    retyped_columns: list[tuple[str, str, str]] = field(default_factory=list)
    """``(column, old type, new type)``."""


@dataclass(slots=True)
class Diff:
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    changes: list[Change]
    tables: list[TableChange]
    unchanged: int

    @property
    def added(self) -> list[Change]:
        return [c for c in self.changes if c.change == "added"]

    @property
    def removed(self) -> list[Change]:
        return [c for c in self.changes if c.change == "removed"]

    @property
    def modified(self) -> list[Change]:
        return [c for c in self.changes if c.change == "modified"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Status:
    """How a working copy differs from a version (by default the latest)."""

    name: str
    ref: str | None
    """The version compared with (None: the dataset has no version yet)."""
    path: str
    changes: list[Change]
    unchanged: int

    @property
    def clean(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


@dataclass(slots=True)
class CheckoutResult:
    """What a checkout wrote: where, how many files, and how (reflink, copy, hardlink)."""

    ref: str
    dest: str
    files: int
    bytes: int
    written: int
    """Files actually written (a forced checkout keeps files that already match)."""
    removed: int
    methods: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LineageRun:
    """A run that used a dataset version, and for what (``context``)."""

    run_id: str
    context: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ModelUse:
    """A registered model version built from a dataset version (through its run)."""

    model: str
    version: int
    run_id: str | None


@dataclass(slots=True)
class Lineage:
    """Where a dataset version went (runs, models), or which dataset versions a run read."""

    subject: str
    runs: list[LineageRun] = field(default_factory=list)
    models: list[ModelUse] = field(default_factory=list)
    datasets: list[tuple[str, str]] = field(default_factory=list)
    """``(name@version, context)`` of the versions a run read."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class VerifyReport:
    """What ``verify`` found: blobs rehashed, and the corrupt and missing ones."""

    blobs_checked: int = 0
    bytes_checked: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    """``(digest, where it is stored)`` of blobs whose content does not match."""
    missing: list[tuple[str, str]] = field(default_factory=list)
    """``(digest, who needs it: name@version:path)`` of referenced blobs not stored."""

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(slots=True)
class GcResult:
    """What ``gc`` removed (or would remove, on a dry run)."""

    dry_run: bool
    blobs_scanned: int = 0
    blobs_referenced: int = 0
    blobs_young: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    cache_dirs_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TransferResult:
    """What a push or a pull moved: objects (blobs) needed, moved, and skipped as already there."""

    direction: str
    """``push`` or ``pull``."""
    ref: str
    remote: str
    objects: int
    moved: int
    bytes_moved: int
    recorded: bool
    """Whether the version record was created (False: it was there already)."""

    @property
    def skipped(self) -> int:
        return self.objects - self.moved

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skipped": self.skipped}

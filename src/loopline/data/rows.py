"""Plain rows the data stores exchange: what a version record holds, what a new one needs.

Both stores (SQLAlchemy Core in :mod:`loopline.data.store`, the stdlib ``sqlite3``
fast path in :mod:`loopline.data._sqlite`) speak these, so callers never see which
one answered.
"""

from __future__ import annotations

import time
from typing import NamedTuple

__all__ = ["EVENT_TAG_MOVED", "EVENT_VERSION_ADDED", "NewVersion", "VersionRow", "now_ms"]

EVENT_VERSION_ADDED = "dataset.version_added"
EVENT_TAG_MOVED = "dataset.tag_moved"
LINEAGE_TYPE = "dataset_version"
"""``src_type``/``dst_type`` of a dataset version in the ``lineage`` table (its id as text)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class VersionRow(NamedTuple):
    """A row of ``dataset_versions`` with its dataset's name.

    Rows are named tuples, not dataclasses: they are made on the CLI's fast path,
    where building a dataclass's methods at import costs milliseconds.
    """

    id: int
    dataset_id: int
    name: str
    version: int
    digest: str
    """``blake3:<hex>`` of the manifest blob."""
    kind: str
    file_count: int
    total_size: int
    message: str
    source: str
    schema_json: str | None
    profile_digest: str | None
    created_at: int
    created_by: str


class NewVersion(NamedTuple):
    """What recording a version needs; ``digest`` is the manifest's ``blake3:<hex>``."""

    project: str
    name: str
    digest: str
    kind: str
    file_count: int
    total_size: int
    user: str
    message: str = ""
    source: str = ""
    schema_json: str | None = None
    profile_digest: str | None = None
    tags: tuple[str, ...] = ()

    def row(self, version_id: int, dataset_id: int, number: int, now: int) -> VersionRow:
        """The row this becomes once stored as version ``number``."""
        return VersionRow(
            version_id,
            dataset_id,
            self.name,
            number,
            self.digest,
            self.kind,
            self.file_count,
            self.total_size,
            self.message,
            self.source,
            self.schema_json,
            self.profile_digest,
            now,
            self.user,
        )

    def event_payload(self, number: int, *, pulled: bool = False) -> dict[str, object]:
        """The payload of the ``dataset.version_added`` event for version ``number``."""
        payload: dict[str, object] = {
            "dataset": self.name,
            "version": number,
            "digest": self.digest,
            "file_count": self.file_count,
            "total_size": self.total_size,
        }
        if pulled:
            payload["pulled"] = True
        return payload


VERSION_COLUMNS = (
    "id",
    "dataset_id",
    "name",
    "version",
    "digest",
    "kind",
    "file_count",
    "total_size",
    "message",
    "source",
    "schema_json",
    "profile_digest",
    "created_at",
    "created_by",
)

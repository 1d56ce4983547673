"""A dataset version: an immutable snapshot of a file or a folder.

Its metadata is loaded with it; its file list, local copy and profile are fetched
on first use through the service that produced it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError
from loopline.store.digest import Digest

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from loopline.data.manifest import Entry, Manifest
    from loopline.data.rows import VersionRow
    from loopline.data.service import DataService

__all__ = ["DatasetVersion"]


class DatasetVersion:
    """One immutable version of a dataset.

    ``ref`` (``name@version``), ``digest`` (the manifest's content digest),
    ``kind`` (``file`` or ``dir``), sizes, message, source path, author and time
    are plain attributes. ``unchanged`` is True when :func:`loopline.data.add`
    found the content equal to the latest version and recorded nothing.
    """

    def __init__(self, row: VersionRow, service: DataService, *, unchanged: bool = False) -> None:
        self._row = row
        self._service = service
        self.id = row.id
        self.name = row.name
        self.version = row.version
        self.digest = Digest.parse(row.digest)
        self.kind = row.kind
        self.file_count = row.file_count
        self.total_size = row.total_size
        self.message = row.message
        self.source = row.source
        self.created_at = row.created_at
        self.created_by = row.created_by
        self.profile_digest = Digest.parse(row.profile_digest) if row.profile_digest else None
        self.unchanged = unchanged

    @property
    def row(self) -> VersionRow:
        """The stored record (what the REST API and remotes exchange)."""
        return self._row

    @property
    def ref(self) -> str:
        """``name@version``: a reference that always names this version."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        flag = " unchanged" if self.unchanged else ""
        return (
            f"<DatasetVersion {self.ref} {self.kind} {self.file_count} files "
            f"{self.total_size} bytes {self.digest.hex[:12]}{flag}>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetVersion):
            return NotImplemented
        return self.id == other.id and self._service.settings.home == other._service.settings.home

    def __hash__(self) -> int:
        return hash(self.id)

    # -- lazily loaded ---------------------------------------------------------------------
    @functools.cached_property
    def manifest(self) -> Manifest:
        """The manifest (verified against :attr:`digest`)."""
        return self._service.manifest(self.digest)

    @property
    def files(self) -> list[Entry]:
        """Every file: ``(path, size, digest, executable)`` entries sorted by path."""
        return list(self.manifest.entries)

    @functools.cached_property
    def tags(self) -> list[str]:
        """The tags pointing at this version now."""
        return self._service.store.tags_for([self.id]).get(self.id, [])

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        """Per tabular file: its format, row count and columns (name and Arrow type)."""
        import orjson

        if not self._row.schema_json:
            return {}
        files: dict[str, Any] = orjson.loads(self._row.schema_json).get("files", {})
        return files

    def profile(self) -> dict[str, Any]:
        """Per tabular file: its profile (see :mod:`loopline.data.profile`); empty when none."""
        import orjson

        if self.profile_digest is None:
            return {}
        doc = orjson.loads(self._service.blobs.get_bytes(self.profile_digest))
        files: dict[str, Any] = doc.get("files", {})
        return files

    @property
    def path(self) -> Path:
        """A local folder holding the version's files, materialised once and cached.

        The copy is read-only and verified against the digests; it lives under
        ``LOOPLINE_HOME/data-cache``. For a single-file version the folder holds that
        one file (see :attr:`file`).
        """
        from loopline.data.checkout import materialize

        return materialize(self._service, self)

    @property
    def file(self) -> Path:
        """The local copy of a single-file version's file."""
        if self.kind != "file":
            raise InvalidArgumentError(
                f"{self.ref} is a folder of {self.file_count} files, not a single file",
                hint="use .path for the folder, or .files for the list",
            )
        return self.path / self.manifest.entries[0].path

    def to_pandas(self, path: str | None = None) -> pd.DataFrame:
        """A tabular version as a DataFrame: one CSV/TSV/Parquet file, or several with one schema.

        ``path`` picks one file of a folder version.
        """
        from loopline.data.tabular import to_pandas

        return to_pandas(self, path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (stable keys, for ``--json`` and the REST API)."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": str(self.digest),
            "kind": self.kind,
            "file_count": self.file_count,
            "total_size": self.total_size,
            "message": self.message,
            "source": self.source,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "tags": self.tags,
            "profile_digest": None if self.profile_digest is None else str(self.profile_digest),
            "schema": self.schema,
            "unchanged": self.unchanged,
        }

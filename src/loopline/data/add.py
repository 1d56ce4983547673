"""``add``: record a file or a folder as a new version of a dataset, when its content changed.

The steps, each cheap when nothing changed:

1. list the tree and stat every file (:mod:`.scan`); bad input stops here;
2. take the digests of files whose (inode, mtime, size) did not change from the
   state cache (:mod:`.state`): an unchanged tree is never read;
3. when every digest is known and the manifest's digest is the latest version's,
   answer "unchanged" without touching the blob store or importing SQLAlchemy;
4. otherwise hash and store the other files (:mod:`.ingest`), store the manifest,
   profile new tabular files (:mod:`.profile`) and record the version in one
   transaction, with its ``dataset.version_added`` event.

Blobs are written before the row that names them, so a process killed at any point
leaves no version behind, at most unreferenced blobs that ``gc`` removes.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from loopline.data._pool import gc_paused, interrupts_deferred
from loopline.data.manifest import Entry, Manifest
from loopline.data.refs import check_name, check_tag
from loopline.data.rows import NewVersion
from loopline.data.scan import Snapshot, scan
from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loopline.data.progress import Progress
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion

__all__ = ["MAX_PROFILED_BYTES", "MAX_PROFILED_FILES", "add", "build_manifest"]

MAX_PROFILED_FILES = 100
"""Tabular files profiled per version (the first ones by path); the rest get no profile."""
MAX_PROFILED_BYTES = 1 << 30
"""Tabular files larger than this are not profiled at add time."""


_new = tuple.__new__


def build_manifest(snapshot: Snapshot, digests: dict[str, str]) -> Manifest:
    """The manifest of a snapshot whose every file has a digest."""
    entries = [
        _new(Entry, (rel, size, digests[rel], x)) for rel, _, size, _, _, x in snapshot.files
    ]
    return Manifest(snapshot.kind, entries, presorted=True)


def add(
    service: DataService,
    path: str | os.PathLike[str],
    name: str,
    *,
    message: str = "",
    tags: Sequence[str] = (),
    profile: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Add ``path`` as the next version of dataset ``name`` (see :func:`loopline.data.add`)."""
    with gc_paused():
        return _add(
            service,
            path,
            name,
            message=message,
            tags=tags,
            profile=profile,
            workers=workers,
            progress=progress,
        )


def _add(
    service: DataService,
    path: str | os.PathLike[str],
    name: str,
    *,
    message: str = "",
    tags: Sequence[str] = (),
    profile: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    check_name(name, "dataset name")
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(dict.fromkeys(check_tag(t) for t in tags))
    snapshot = scan(path, exclude=service.settings.home)
    if not snapshot.files:
        raise InvalidArgumentError(
            f"{os.fspath(path)} contains no files", hint="a dataset version needs at least one file"
        )
    started = time.time_ns()
    tree = service.state.lookup(snapshot)
    latest = service.latest(name)
    new = NewVersion(
        project=service.settings.project,
        name=name,
        digest="",
        kind=snapshot.kind,
        file_count=len(snapshot.files),
        total_size=snapshot.total_size,
        user=service.settings.user,
        message=message,
        source=snapshot.root,
        tags=tags,
    )
    digest = tree.manifest_digest
    if digest is None and len(tree.known) == len(snapshot.files):
        digest = str(build_manifest(snapshot, tree.known).digest)
        service.state.record(snapshot, tree.known, digest, started_ns=started)
    if digest is not None and latest is not None and latest.digest == digest:
        if not tags:
            return service.version(latest, unchanged=True)
        row, created = service.record(_with(new, digest=digest))
        return service.version(row, unchanged=not created)
    known = tree.known
    if service.http is not None:  # through a server: hash here, upload what it lacks
        from loopline.data.http import upload

        digests = upload(service, snapshot.files, known, workers=workers, progress=progress)
    else:
        from loopline.data.ingest import ingest

        referenced: set[str] | None = set()
        if latest is not None:
            # The cache's digests all belong to the listing it last recorded; when that
            # listing is the latest version, its blobs are stored: no need to read its
            # manifest to find out which ones are.
            if tree.stored_manifest == latest.digest:
                referenced = None
            else:
                referenced = service.manifest_digests(latest.digest)
        digests = ingest(
            snapshot.files,
            known,
            service.sink(),
            blobs=service.blobs,
            referenced=referenced,
            workers=workers,
            progress=progress,
        )
    manifest = build_manifest(snapshot, digests)
    digest = str(manifest.digest)
    service.state.record(snapshot, digests, digest, started_ns=started)
    if latest is not None and latest.digest == digest and not tags:
        return service.version(latest, unchanged=True)
    with interrupts_deferred():
        service.blobs.put_bytes(manifest.to_bytes())
    schema_json = profile_digest = None
    if profile and (latest is None or latest.digest != digest):
        schema_json, profile_digest = _profile(service, snapshot, manifest)
    row, created = service.record(
        _with(new, digest=digest, schema_json=schema_json, profile_digest=profile_digest)
    )
    return service.version(row, unchanged=not created)


def _with(new: NewVersion, **changes: Any) -> NewVersion:
    return new._replace(**changes)


def _profile(
    service: DataService, snapshot: Snapshot, manifest: Manifest
) -> tuple[str | None, str | None]:
    """(schema JSON, profile blob digest) of the version's tabular files; (None, None) without any."""
    import orjson

    from loopline.data.profile import TABULAR_SUFFIXES, tabular_format

    # One pass over the manifest's bytes instead of a suffix test per entry (a path in
    # them ends with a quote): most trees of 20,000 files have no table at all.
    text = manifest.to_bytes().lower()
    if not any(f'{suffix}"'.encode() in text for suffix in TABULAR_SUFFIXES):
        return None, None
    tabular = [(e, fmt) for e in manifest.entries if (fmt := tabular_format(e.path)) is not None]
    if not tabular:
        return None, None
    by_path = {f.relpath: f.abspath for f in snapshot.files}
    schemas: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    skipped: list[str] = []
    for i, (entry, fmt) in enumerate(tabular):
        if i >= MAX_PROFILED_FILES or entry.size > MAX_PROFILED_BYTES:
            skipped.append(entry.path)
            continue
        schema, prof = _profile_one(service, entry, fmt, by_path[entry.path])
        schemas[entry.path] = schema
        if prof is not None:
            profiles[entry.path] = prof
    doc: dict[str, Any] = {"files": schemas}
    if skipped:
        doc["unprofiled"] = skipped
    profile_digest = None
    if profiles:
        blob = orjson.dumps({"format": "loopline.profile/1", "files": profiles})
        with interrupts_deferred():
            profile_digest = str(service.blobs.put_bytes(blob))
    return orjson.dumps(doc).decode(), profile_digest


def _profile_one(
    service: DataService, entry: Entry, fmt: str, source: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(schema entry, profile) of one file, from the state cache when its content was seen."""
    import orjson

    cached = service.state.get_profile(entry.digest)
    if cached is not None:
        both = orjson.loads(cached)
        return both["schema"], both["profile"]
    from loopline.data.profile import profile_file

    try:
        columns, prof = profile_file(_readable(service, entry, source), fmt)
    except Exception as exc:  # a malformed file is still data: version it, say why unprofiled
        return {"format": fmt, "error": f"{type(exc).__name__}: {exc}"[:500]}, None
    schema = {"format": fmt, "rows": prof["rows"], "columns": columns}
    service.state.put_profile(entry.digest, orjson.dumps({"schema": schema, "profile": prof}))
    return schema, prof


def _readable(service: DataService, entry: Entry, source: str) -> str:
    """Where to read a file's stored content: the blob itself when the store is local."""
    object_path = getattr(service.blobs, "object_path", None)
    if object_path is not None and os.path.exists(path := str(object_path(entry.blob))):
        return path
    return source  # a packed file, or a remote store: the file just hashed

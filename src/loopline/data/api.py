"""The data versioning SDK: module-level functions over a process-wide :class:`DataService`.

>>> from loopline.data._doc import fresh_home, sample_csv
>>> _ = fresh_home()                  # a throw-away LOOPLINE_HOME for this example
>>> csv = sample_csv(rows=4)
>>> v1 = add(csv, "measurements", message="first cut", tags=["baseline"])
>>> v1.ref, v1.file_count, v1.schema["measurements.csv"]["rows"]
('measurements@1', 1, 4)
>>> add(csv, "measurements").unchanged          # same content: no new version
True
>>> _ = csv.write_text(csv.read_text() + "4,6.0,a\\n")
>>> v2 = add(csv, "measurements")
>>> [v.ref for v in versions("measurements")]
['measurements@1', 'measurements@2']
>>> [(c.path, c.change) for c in diff("measurements@baseline", "measurements@latest").changes]
[('measurements.csv', 'modified')]
>>> len(get("measurements@2").to_pandas())
5
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from loopline.config import get_settings

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from loopline.data.entities import (
        CheckoutResult,
        Diff,
        GcResult,
        Lineage,
        Status,
        TransferResult,
        VerifyReport,
    )
    from loopline.data.progress import Progress
    from loopline.data.service import DataService
    from loopline.data.store import DatasetRow
    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore

__all__ = [
    "add",
    "checkout",
    "close",
    "diff",
    "gc",
    "get",
    "get_service",
    "lineage",
    "list_datasets",
    "log_input",
    "pull",
    "push",
    "status",
    "tag",
    "verify",
    "versions",
]

_service: DataService | None = None
_lock = threading.Lock()


def get_service() -> DataService:
    """The service for the current settings (a new one when the settings changed)."""
    global _service
    settings = get_settings()
    with _lock:
        if _service is None or _service.settings is not settings:
            from loopline.data.service import DataService

            if _service is not None:
                _service.close()
            _service = DataService(settings)
        return _service


def close() -> None:
    """Close the process-wide service (it reopens on the next call)."""
    global _service
    with _lock:
        if _service is not None:
            _service.close()
        _service = None


def add(
    path: str | os.PathLike[str],
    name: str,
    *,
    message: str = "",
    tags: Sequence[str] = (),
    profile: bool = True,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Record a file or a folder as the next version of dataset ``name``.

    A new, immutable version is recorded when the content differs from the latest
    version; otherwise the latest version comes back with ``unchanged=True``.
    ``tags`` point at the version (moving them if they pointed elsewhere). CSV,
    TSV and Parquet files get a schema and a profile (``profile=False`` skips it).

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> v = add(sample_csv(), "iris-lite", message="from the field", tags=["raw"])
    >>> v.ref, v.kind, v.tags, v.unchanged
    ('iris-lite@1', 'file', ['raw'], False)
    """
    from loopline.data.add import add as _add

    return _add(
        get_service(), path, name, message=message, tags=tags, profile=profile, progress=progress
    )


def get(ref: str, *, context: str = "") -> DatasetVersion:
    """The version ``ref`` names: ``NAME``, ``NAME@3``, ``NAME@latest``, ``NAME@TAG``, ``NAME@sha:PREFIX``.

    Inside an active run, this records that the run read the version (lineage),
    with ``context`` when given.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(rows=3), "readings")
    >>> v = get("readings@1")
    >>> v.files[0].path, v.file.name, len(v.to_pandas())
    ('measurements.csv', 'measurements.csv', 3)
    """
    service = get_service()
    version = service.resolve(ref)
    from loopline.data.lineage import active_run_id, log_input

    run_id = active_run_id()
    if run_id is not None:
        log_input(service, version, run_id=run_id, context=context)
    return version


def versions(name: str) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(rows=2), "d"); _ = add(sample_csv(rows=3), "d")
    >>> [v.version for v in versions("d")]
    [1, 2]
    """
    from loopline.data.refs import check_name

    service = get_service()
    return [
        service.version(row)
        for row in service.store.versions(service.settings.project, check_name(name))
    ]


def list_datasets() -> list[DatasetRow]:
    """The datasets of the current project, by name, with their latest version.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(), "b-set"); _ = add(sample_csv(), "a-set")
    >>> [(d.name, d.latest) for d in list_datasets()]
    [('a-set', 1), ('b-set', 1)]
    """
    service = get_service()
    return service.store.datasets(service.settings.project)


def diff(a: str | DatasetVersion, b: str | DatasetVersion) -> Diff:
    """What changed from version ``a`` to version ``b``: files, and tabular rows and columns.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(rows=3), "t"); _ = add(sample_csv(rows=5), "t")
    >>> d = diff("t@1", "t@2")
    >>> d.tables[0].old_rows, d.tables[0].new_rows
    (3, 5)
    """
    from loopline.data.diff import diff as _diff

    return _diff(get_service(), a, b)


def checkout(
    ref: str | DatasetVersion,
    dest: str | os.PathLike[str],
    *,
    link: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> CheckoutResult:
    """Write a version's files to ``dest``, verified against their digests.

    Files are reflinked where the file system supports it, else copied; editing
    them never changes the store. ``link=True`` makes read-only hard links to the
    stored blobs instead. ``force=True`` makes an existing folder match the version.

    >>> import tempfile
    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv().parent, "folder")
    >>> result = checkout("folder@1", tempfile.mkdtemp() + "/copy")
    >>> result.files, sorted(p.name for p in __import__("pathlib").Path(result.dest).iterdir())
    (1, ['measurements.csv'])
    """
    from loopline.data.checkout import checkout as _checkout

    return _checkout(get_service(), ref, dest, link=link, force=force, progress=progress)


def status(
    name: str, path: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
) -> Status:
    """How ``path`` (default: where the latest version came from) differs from the latest version.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> csv = sample_csv()
    >>> _ = add(csv.parent, "work")
    >>> status("work").clean
    True
    >>> _ = (csv.parent / "notes.txt").write_text("new")
    >>> [(c.path, c.change) for c in status("work").changes]
    [('notes.txt', 'added')]
    """
    from loopline.data.status import status as _status

    return _status(get_service(), name, path, progress=progress)


def tag(ref: str | DatasetVersion, tag: str) -> DatasetVersion:
    """Point ``tag`` at a version (moving it when it pointed elsewhere; every move is kept).

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(rows=2), "m"); _ = add(sample_csv(rows=3), "m")
    >>> tag("m@1", "prod").version, tag("m@2", "prod").version, get("m@prod").version
    (1, 2, 2)
    """
    from loopline.data.refs import check_tag, parse_ref

    service = get_service()
    version = service.resolve(ref)
    service.store.move_tag(
        service.settings.project,
        parse_ref(version.ref),
        check_tag(tag),
        service.settings.user,
    )
    return service.resolve(version.ref)


def lineage(version: str | DatasetVersion | None = None, *, run_id: str | None = None) -> Lineage:
    """Which runs and models used a version; or, with ``run_id``, which versions a run read.

    >>> import loopline
    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(), "train-set")
    >>> with loopline.start_run() as run:
    ...     _ = log_input("train-set@1", context="training")
    >>> [r.context for r in lineage("train-set@1").runs]
    ['training']
    >>> lineage(run_id=run.info.run_id).datasets
    [('train-set@1', 'training')]
    """
    from loopline.data.lineage import lineage as _lineage

    return _lineage(get_service(), version, run_id=run_id)


def log_input(
    version: str | DatasetVersion, context: str = "training", *, run_id: str | None = None
) -> DatasetVersion:
    """Record that the active run (or ``run_id``) read ``version``, for ``context``.

    See :func:`lineage` for an example.
    """
    from loopline.data.lineage import log_input as _log_input

    return _log_input(get_service(), version, run_id=run_id, context=context)


def gc(*, dry_run: bool = False, grace_seconds: float = 3600.0) -> GcResult:
    """Delete blobs no version (nor anything else) references, older than ``grace_seconds``.

    >>> from loopline.data._doc import fresh_home
    >>> _ = fresh_home()
    >>> _ = get_service().blobs.put_bytes(b"orphan")
    >>> gc(dry_run=True, grace_seconds=0).blobs_deleted
    1
    """
    from loopline.data.gc import gc as _gc

    return _gc(get_service(), dry_run=dry_run, grace_seconds=grace_seconds)


def verify(ref: str | None = None, *, progress: Progress | None = None) -> VerifyReport:
    """Rehash stored blobs (all, or those of ``ref``) and find missing ones.

    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(), "checked")
    >>> report = verify()
    >>> report.ok, report.blobs_checked
    (True, 3)
    """
    from loopline.data.verify import verify as _verify

    return _verify(get_service(), ref, progress=progress)


def push(
    ref: str | DatasetVersion,
    remote: str | BlobStore,
    *,
    progress: Progress | None = None,
) -> TransferResult:
    """Copy a version (its manifest, files, profile and record) to a remote blob store.

    ``remote`` is a folder, ``file://PATH`` or ``s3://BUCKET/PREFIX``. Only objects
    the remote lacks move; running it again after an interruption resumes.

    >>> import tempfile
    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(), "shared")
    >>> remote = tempfile.mkdtemp()
    >>> push("shared@1", remote).moved, push("shared@1", remote).moved
    (3, 0)
    """
    from loopline.data.transfer import push as _push

    return _push(get_service(), ref, remote, progress=progress)


def pull(ref: str, remote: str | BlobStore, *, progress: Progress | None = None) -> TransferResult:
    """Copy a version from a remote blob store into this one, with its number and digest.

    Every blob is verified on the way: a corrupt one raises
    :class:`~loopline.errors.IntegrityError` naming the file and its digest, and is
    not stored; the version is recorded only once all its blobs are here.

    >>> import tempfile
    >>> from loopline.data._doc import fresh_home, sample_csv
    >>> _ = fresh_home()
    >>> _ = add(sample_csv(), "shared")
    >>> remote = tempfile.mkdtemp()
    >>> _ = push("shared", remote)
    >>> _ = fresh_home()                   # another, empty home
    >>> pull("shared@1", remote).ref, get("shared@1").files[0].path
    ('shared@1', 'measurements.csv')
    """
    from loopline.data.transfer import pull as _pull

    return _pull(get_service(), ref, remote, progress=progress)

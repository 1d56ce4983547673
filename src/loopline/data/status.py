"""``status``: how a working copy differs from a dataset's latest version (or another one).

Like ``add`` it trusts the state cache for files whose stat did not change and
hashes the others (storing nothing); when every digest is known and the tree's
manifest digest equals the version's, the answer is "clean" without reading the
version's manifest or importing SQLAlchemy.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from loopline.data._pool import gc_paused
from loopline.data.add import build_manifest
from loopline.data.entities import Change, Status
from loopline.data.refs import check_name
from loopline.data.scan import scan
from loopline.errors import NotFoundError

if TYPE_CHECKING:
    from loopline.data.manifest import Manifest
    from loopline.data.progress import Progress
    from loopline.data.rows import VersionRow
    from loopline.data.service import DataService

__all__ = ["compare", "status"]


def compare(old: Manifest | None, new: Manifest) -> tuple[list[Change], int]:
    """(changes from ``old`` to ``new``, number of files unchanged), changes sorted by path.

    >>> from loopline.data.manifest import Entry, Manifest
    >>> a = Manifest("dir", [Entry("x", 1, "0" * 64), Entry("y", 2, "1" * 64)])
    >>> b = Manifest("dir", [Entry("x", 3, "2" * 64), Entry("z", 4, "3" * 64)])
    >>> changes, same = compare(a, b)
    >>> [(c.path, c.change) for c in changes], same
    ([('x', 'modified'), ('y', 'removed'), ('z', 'added')], 0)
    """
    before = old.by_path if old is not None else {}
    after = new.by_path
    changes: list[Change] = []
    unchanged = 0
    for path, entry in after.items():
        prior = before.get(path)
        if prior is None:
            changes.append(Change(path, "added", None, entry.size))
        elif (prior.digest, prior.executable) != (entry.digest, entry.executable):
            changes.append(Change(path, "modified", prior.size, entry.size))
        else:
            unchanged += 1
    changes.extend(Change(p, "removed", e.size, None) for p, e in before.items() if p not in after)
    changes.sort(key=lambda c: c.path)
    return changes, unchanged


def status(
    service: DataService,
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    ref: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Status:
    """Compare ``path`` (default: where the version was added from) with a version of ``name``."""
    with gc_paused():
        return _status(service, name, path, ref=ref, workers=workers, progress=progress)


def _status(
    service: DataService,
    name: str,
    path: str | os.PathLike[str] | None,
    *,
    ref: str | None,
    workers: int | None,
    progress: Progress | None,
) -> Status:
    check_name(name, "dataset name")
    row: VersionRow | None
    row = service.latest(name) if ref is None else service.resolve(f"{name}@{ref}")._row
    if row is None and path is None:
        raise NotFoundError(
            f"dataset {name!r} has no versions",
            hint=f"add one with `loopline data add PATH --name {name}`",
        )
    where = os.fspath(path) if path is not None else row.source  # type: ignore[union-attr]
    snapshot = scan(where, exclude=service.settings.home)
    started = time.time_ns()
    tree = service.state.lookup(snapshot)
    version_ref = None if row is None else f"{row.name}@{row.version}"
    digest = tree.manifest_digest
    if digest is None and len(tree.known) == len(snapshot.files):
        digest = str(build_manifest(snapshot, tree.known).digest)
        service.state.record(snapshot, tree.known, digest, started_ns=started)
    if row is not None and digest == row.digest:
        return Status(name, version_ref, snapshot.root, [], len(snapshot.files))
    known = tree.known
    unknown = [f for f in snapshot.files if f.relpath not in known]
    from loopline.data.ingest import hash_files

    digests = {**known, **hash_files(unknown, workers=workers, progress=progress)}
    current = build_manifest(snapshot, digests)
    service.state.record(snapshot, digests, str(current.digest), started_ns=started)
    old = None if row is None else service.manifest(row.digest)
    changes, unchanged = compare(old, current)
    return Status(name, version_ref, snapshot.root, changes, unchanged)

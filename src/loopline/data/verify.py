"""``verify``: rehash stored blobs and check that every blob a version needs is there.

Every blob in the store is read and hashed (in parallel, memory-mapped for large
ones), packs included; a blob whose content does not match its name is reported
with its digest and where it is stored. Then every live version's manifest, files and profile are
checked for presence; a missing one is reported with the version and path that
need it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from loopline.data._fs import hash_path
from loopline.data._pool import Pool
from loopline.data.entities import VerifyReport
from loopline.data.manifest import Manifest
from loopline.data.packs import PackIndex
from loopline.errors import IntegrityError, NotFoundError
from loopline.store.digest import ALGO, Digest

if TYPE_CHECKING:
    from loopline.data.progress import Progress
    from loopline.data.service import DataService
    from loopline.data.version import DatasetVersion
    from loopline.store.blobs import BlobStore

__all__ = ["needed_blobs", "verify"]


def needed_blobs(
    service: DataService, versions: list[DatasetVersion]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(hex digest -> who needs it, unreadable manifests as (digest, version ref))."""
    needed: dict[str, str] = {}
    broken: list[tuple[str, str]] = []
    for version in versions:
        needed.setdefault(version.digest.hex, f"{version.ref} (manifest)")
        if version.profile_digest is not None:
            needed.setdefault(version.profile_digest.hex, f"{version.ref} (profile)")
        try:
            manifest = Manifest.from_bytes(service.blobs.get_bytes(version.digest, verify=True))
        except (NotFoundError, IntegrityError):
            broken.append((str(version.digest), f"{version.ref} (manifest)"))
            continue
        for entry in manifest.entries:
            needed.setdefault(entry.digest, f"{version.ref}:{entry.path}")
    return needed, broken


def _local_objects(blobs: BlobStore) -> list[tuple[str, str, int]] | None:
    """(name, path, size) of every object file of a local store; None for other stores."""
    root = getattr(blobs, "root", None)
    if root is None or not hasattr(blobs, "object_path"):
        return None
    objects = os.path.join(root, "objects")
    found: list[tuple[str, str, int]] = []
    if not os.path.isdir(objects):
        return found
    for shard in sorted(os.scandir(objects), key=lambda e: e.name):
        if not shard.is_dir():
            continue
        for blob in os.scandir(shard.path):
            found.append((shard.name + blob.name, blob.path, blob.stat().st_size))
    return found


def verify(
    service: DataService,
    ref: str | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Rehash the store's blobs (or only those ``ref`` needs) and find missing ones."""
    server = service.server()
    if server is not None:  # the server rehashes its own store
        from loopline.data.http import remote_verify

        return remote_verify(server, None if ref is None else service.resolve(ref).ref)
    blobs = service.blobs
    if ref is not None:
        versions = [service.resolve(ref)]
    else:
        versions = [service.version(row) for row in service.store.live_versions()]
    needed, _unreadable = needed_blobs(service, versions)  # reported as corrupt or missing
    report = VerifyReport()
    objects = _local_objects(blobs)
    if objects is None:
        objects = [(d.hex, str(d), blobs.size(d)) for d in blobs.iter_digests()]
    if ref is not None:
        wanted = set(needed)
        index = PackIndex.load(blobs)
        wanted |= {w[0] for d in needed if (w := index.locate(d)) is not None}
        objects = [o for o in objects if o[0] in wanted]
    stored = {o[0] for o in objects}
    size = sum(o[2] for o in objects)
    if progress is not None:
        progress.start(len(objects), size)
    corrupt: list[tuple[str, str] | None] = [None] * len(objects)
    pool = Pool(len(objects), workers, progress, size=size)

    def work(i: int, worker: int) -> None:
        name, where, size = objects[i]
        ok = len(name) == 64 and _rehash(blobs, name, where, size) == name
        if not ok:
            corrupt[i] = (f"{ALGO}:{name}", where)
        pool.files[worker] += 1
        pool.bytes[worker] += size

    try:
        pool.run(work)
    finally:
        if progress is not None:
            progress.finish()
    report.blobs_checked = len(objects)
    report.bytes_checked = sum(o[2] for o in objects)
    report.corrupt = [c for c in corrupt if c is not None]
    packs = PackIndex.load(blobs)

    def present(digest: str) -> bool:
        if digest in stored:
            return True
        where = packs.locate(digest)
        return where is not None and (where[0] in stored or blobs.exists(Digest(ALGO, where[0])))

    report.missing = [(f"{ALGO}:{d}", who) for d, who in sorted(needed.items()) if not present(d)]
    return report


def _rehash(blobs: BlobStore, name: str, where: str, size: int) -> str | None:
    try:
        if hasattr(blobs, "object_path"):
            return hash_path(where, size)
        return Digest.of_bytes(blobs.get_bytes(Digest(ALGO, name), verify=False)).hex
    except Exception:
        return None

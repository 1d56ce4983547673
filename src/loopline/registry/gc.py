"""The registry's garbage-collection reference provider.

Model versions keep their files as manifests under ``model_versions/<id>`` and MLflow
3 logged models under ``logged_models/<id>``; both live in the ``artifacts`` table,
so a version keeps its blobs even after the run it came from is purged. This
provider names those digests explicitly, so they stay protected whatever the
generic artifact provider comes to cover.

>>> import tempfile
>>> from loopline.store.metadata import Database
>>> registry_references(Database(f"sqlite:///{tempfile.mkdtemp()}/m.db"))
set()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.store.blobs import BlobStore
    from loopline.store.metadata import Database

__all__ = ["ROOT_PREFIXES", "registry_references"]

ROOT_PREFIXES = ("model_versions/", "logged_models/")


def registry_references(db: Database, blobs: BlobStore | None = None) -> set[str]:
    """Digests of every live model version's and logged model's files."""
    import sqlalchemy as sa

    from loopline.store.metadata.schema import artifacts

    query = (
        sa.select(artifacts.c.digest)
        .where(sa.or_(*(artifacts.c.root.startswith(p) for p in ROOT_PREFIXES)))
        .distinct()
    )
    with db.read() as conn:
        return set(conn.execute(query).scalars())

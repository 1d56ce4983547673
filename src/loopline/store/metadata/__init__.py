"""The metadata database (SQLite or PostgreSQL through SQLAlchemy) and its schema."""

from __future__ import annotations

from loopline.store.metadata.database import HEAD_REVISION, Database

__all__ = ["HEAD_REVISION", "Database"]

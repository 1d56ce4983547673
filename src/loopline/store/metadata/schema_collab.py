"""Tables of the collaboration capability (users, tokens, memberships, comments, audit).

Migration 0007 builds them; the autogenerate check in tests/contract/test_database.py
compares these tables with the migrations.
"""

from __future__ import annotations

from loopline.store.metadata.schema import BigId, Millis, metadata

__all__: list[str] = []

# Referenced so the shared column types stay importable from here.
_ = (BigId, Millis, metadata)

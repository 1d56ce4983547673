"""Alembic environment: migrations run on a connection loopline hands over."""

from __future__ import annotations

from alembic import context

from loopline.store.metadata.database import VERSION_TABLE
from loopline.store.metadata.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - loopline always passes one
    raise RuntimeError("loopline runs migrations through Database.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()

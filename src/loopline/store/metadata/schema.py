"""The metadata schema as SQLAlchemy Core tables.

Core rather than ORM classes: the hot paths are bulk inserts of metric points and
wide reads for search, where Core's executemany and row tuples are several times
faster than unit-of-work flushes and object hydration.

Times are integers in milliseconds since the epoch (MLflow's convention). Metric
values that are NaN are stored as NULL (SQLite cannot store NaN) and read back as
NaN; infinities are stored as they are.

The Alembic migrations in ``migrations/versions`` build exactly this schema; a test
checks that autogenerate finds no difference.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit integer primary keys that SQLite still treats as its rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Millis = sa.BigInteger
KEY_LENGTH = 250

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("artifact_location", sa.Text, nullable=False, server_default=""),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False, server_default="active"),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.UniqueConstraint("project_id", "name"),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(KEY_LENGTH), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", Millis, nullable=False),
    sa.Column("end_time", Millis, nullable=True),
    sa.Column("user", sa.String(256), nullable=False, server_default=""),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False, server_default="active"),
    sa.Column("parent_run_id", sa.String(32), nullable=True, index=True),
    sa.Column("artifact_uri", sa.Text, nullable=False, server_default=""),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.Index(None, "experiment_id", "start_time"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key", "value"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Every logged point. No uniqueness constraint: idempotency comes from write batch ids
# (``write_batches``), which keeps bulk inserts cheap.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("key", sa.String(KEY_LENGTH), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", Millis, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

# The point with the highest (step, timestamp) per run and key: what search filters on.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("timestamp", Millis, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Index(None, "key", "value"),
)

# Path -> digest manifests over the blob store. ``root`` names the owner, e.g. "runs/<id>".
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("root", sa.String(300), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(80), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

# The append-only event log: other parts poll or stream it from an id.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("entity_type", sa.String(64), nullable=False),
    sa.Column("entity_id", sa.String(300), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False, server_default=""),
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", Millis, nullable=False),
)

# Ids of applied write batches: a retried batch is recognised and skipped.
write_batches = sa.Table(
    "write_batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", Millis, nullable=False),
)

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
    # Covering: a history is an index-only scan already in (step, timestamp, id) order.
    sa.Index(None, "run_id", "key", "step", "timestamp", "id", "value"),
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

# -- data versioning -------------------------------------------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.UniqueConstraint("project_id", "name"),
)

# An immutable version. Its content is a manifest blob (path, size, digest, mode per
# file) addressed by ``digest``; a single-file dataset is a manifest of one entry.
dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(80), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("file_count", sa.BigInteger, nullable=False),
    sa.Column("total_size", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    # JSON: column names and types per tabular file; the profile is a blob (digest).
    sa.Column("schema_json", sa.Text, nullable=True),
    sa.Column("profile_digest", sa.String(80), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.UniqueConstraint("dataset_id", "version"),
)

# Movable names for versions; every move is kept in ``dataset_tag_history``.
dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("tag", sa.String(256), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False, server_default=""),
)

dataset_tag_history = sa.Table(
    "dataset_tag_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, nullable=False, index=True),
    sa.Column("tag", sa.String(256), nullable=False),
    sa.Column("from_version_id", sa.Integer, nullable=True),
    sa.Column("to_version_id", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
)

# -- lineage ---------------------------------------------------------------------------

# Directed edges between any two objects: dataset_version -> run (input), run ->
# model_version (output), model_version -> deployment, pipeline_run -> run ...
# Object ids are strings so every kind of object fits one table.
lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("src_type", sa.String(32), nullable=False),
    sa.Column("src_id", sa.String(300), nullable=False),
    sa.Column("dst_type", sa.String(32), nullable=False),
    sa.Column("dst_id", sa.String(300), nullable=False),
    sa.Column("relation", sa.String(32), nullable=False),
    sa.Column("context", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
    sa.UniqueConstraint("src_type", "src_id", "dst_type", "dst_id", "relation"),
    sa.Index(None, "dst_type", "dst_id"),
)

# -- model registry --------------------------------------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    # New versions start in pending_review instead of none.
    sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.UniqueConstraint("project_id", "name"),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A version's files are an artifact manifest under root "model_versions/<id>", copied
# from its source at registration so later changes to the source cannot touch it.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", sa.String(32), nullable=True, index=True),
    sa.Column("logged_model_id", sa.String(40), nullable=True),
    sa.Column("flavor", sa.String(64), nullable=False, server_default=""),
    sa.Column("signature_json", sa.Text, nullable=True),
    sa.Column("status", sa.String(32), nullable=False, server_default="READY"),
    # none | pending_review | approved | rejected
    sa.Column("review_status", sa.String(32), nullable=False, server_default="none"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.UniqueConstraint("model_id", "version"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
    # A protected alias only points at approved versions.
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False, server_default=""),
)

model_alias_history = sa.Table(
    "model_alias_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, nullable=False, index=True),
    sa.Column("alias", sa.String(256), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(256), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
)

model_reviews = sa.Table(
    "model_reviews",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, nullable=False, index=True),
    # requested | approved | rejected
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("reviewer", sa.String(256), nullable=False, server_default=""),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
)

# MLflow 3's logged models (``models:/m-<id>``): a model logged by a run, before
# (or without) registration. Files live under artifact root "logged_models/<id>".
logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("flavor", sa.String(64), nullable=False, server_default=""),
    sa.Column("status", sa.String(32), nullable=False, server_default="READY"),
    sa.Column("model_type", sa.String(64), nullable=False, server_default=""),
    sa.Column("source_run_id", sa.String(32), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
)

logged_model_tags = sa.Table(
    "logged_model_tags",
    metadata,
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    sa.Column("model_id", sa.String(40), sa.ForeignKey("logged_models.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Later capabilities keep their tables in modules of their own (one owner each);
# importing them here puts every table on ``metadata``.
from loopline.store.metadata import schema_collab as schema_collab  # noqa: E402
from loopline.store.metadata import schema_monitoring as schema_monitoring  # noqa: E402
from loopline.store.metadata import schema_pipelines as schema_pipelines  # noqa: E402
from loopline.store.metadata import schema_serving as schema_serving  # noqa: E402

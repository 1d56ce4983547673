"""Read indexes: metric histories read from one covering index.

``metrics(run_id, key, step, timestamp, id, value)`` replaces ``metrics(run_id, key,
step)``: a history (what charts draw) is then an index-only range scan already in
(step, timestamp, id) order, with no lookup into the table per point and no sort.
The old index was its prefix, so every query it served is served by the new one.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD = ["run_id", "key", "step"]
_NEW = ["run_id", "key", "step", "timestamp", "id", "value"]


def upgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metrics_" + "_".join(_NEW)), _NEW, unique=False)
        batch_op.drop_index(batch_op.f("ix_metrics_" + "_".join(_OLD)))


def downgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metrics_" + "_".join(_OLD)), _OLD, unique=False)
        batch_op.drop_index(batch_op.f("ix_metrics_" + "_".join(_NEW)))

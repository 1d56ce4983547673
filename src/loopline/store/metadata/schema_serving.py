"""Tables of the serving capability (deployments, their routing state and change history).

Migration 0005 builds them; the autogenerate check in tests/contract/test_database.py
compares these tables with the migrations.

A deployment's routing state (the version it follows, the canary and its share,
the shadow, the rollback limits and the prediction-log settings) is one JSON
document: it is read and replaced whole, in one transaction, and every change
appends the state it produced to ``deployment_history``.
"""

from __future__ import annotations

import sqlalchemy as sa

from loopline.store.metadata.schema import BigId, Millis, metadata

__all__ = ["deployment_history", "deployments"]

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.UniqueConstraint("project_id", "name"),
)

deployment_history = sa.Table(
    "deployment_history",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column(
        "deployment_id",
        BigId,
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

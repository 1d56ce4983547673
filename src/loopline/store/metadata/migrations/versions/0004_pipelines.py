"""Pipelines: runs and steps, step cache, triggers and their firings, the scheduler lease.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("executor", sa.String(16), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("dag_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("host", sa.String(256), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer, nullable=False, server_default="0"),
        sa.Column("resumed_from", sa.String(32), nullable=True),
        sa.Column("firing_id", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )
    op.create_index(
        "ix_pipeline_runs_project_id_started_at", "pipeline_runs", ["project_id", "started_at"]
    )
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("child_run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("cache_key", sa.String(80), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("inputs_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("outputs_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("traceback", sa.Text, nullable=False, server_default=""),
        sa.Column("logs", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.id"],
            name="fk_pipeline_steps_run_id_pipeline_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_pipeline_steps"),
    )
    op.create_table(
        "pipeline_cache",
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("step", sa.String(256), nullable=False),
        sa.Column("outputs_json", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("child_run_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_pipeline_cache"),
    )
    op.create_table(
        "pipeline_triggers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.String(500), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("executor", sa.String(16), nullable=False, server_default="local"),
        sa.Column("data_param", sa.String(128), nullable=False, server_default="dataset"),
        sa.Column("workdir", sa.Text, nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("next_fire_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_triggers"),
    )
    op.create_table(
        "pipeline_firings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("trigger_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pipeline_run_id", sa.String(32), nullable=True),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["pipeline_triggers.id"],
            name="fk_pipeline_firings_trigger_id_pipeline_triggers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_firings"),
        sa.UniqueConstraint(
            "trigger_id", "event_id", name="uq_pipeline_firings_trigger_id_event_id"
        ),
    )
    op.create_index("ix_pipeline_firings_status", "pipeline_firings", ["status"])
    op.create_table(
        "pipeline_scheduler",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(256), nullable=False, server_default=""),
        sa.Column("expires_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pipeline_scheduler"),
    )


def downgrade() -> None:
    op.drop_table("pipeline_scheduler")
    op.drop_index("ix_pipeline_firings_status", table_name="pipeline_firings")
    op.drop_table("pipeline_firings")
    op.drop_table("pipeline_triggers")
    op.drop_table("pipeline_cache")
    op.drop_table("pipeline_steps")
    op.drop_index("ix_pipeline_runs_status", table_name="pipeline_runs")
    op.drop_index("ix_pipeline_runs_project_id_started_at", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")

"""Tables of the pipelines capability (runs and their steps, the step cache, triggers
and their firings, the scheduler lease).

Migration 0004 builds them; the autogenerate check in tests/contract/test_database.py
compares these tables with the migrations.

A pipeline run *is* a tracked run (``pipeline_runs.id`` is its run id) and each step
gets a child run; these tables add what the tracking schema has no place for: the
DAG, step states, cache keys, logs, and the pid that lets the next start tell a
killed run from a live one.
"""

from __future__ import annotations

import sqlalchemy as sa

from loopline.store.metadata.schema import BigId, Millis, metadata

__all__ = [
    "pipeline_cache",
    "pipeline_firings",
    "pipeline_runs",
    "pipeline_scheduler",
    "pipeline_steps",
    "pipeline_triggers",
]

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("target", sa.Text, nullable=False, server_default=""),
    # running | succeeded | failed | gate_failed | waiting_approval | killed
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
    sa.Column("started_at", Millis, nullable=False),
    sa.Column("heartbeat_at", Millis, nullable=False),
    sa.Column("ended_at", Millis, nullable=True),
    sa.Index(None, "project_id", "started_at"),
    sa.Index(None, "status"),
)

pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("child_run_id", sa.String(32), nullable=True),
    # pending | running | succeeded | cached | failed | skipped | blocked
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("cache_key", sa.String(80), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("inputs_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("outputs_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("traceback", sa.Text, nullable=False, server_default=""),
    sa.Column("logs", sa.Text, nullable=False, server_default=""),
    sa.Column("started_at", Millis, nullable=True),
    sa.Column("ended_at", Millis, nullable=True),
)

# Step outputs by cache key. The outputs are artifacts of the step's child run (so
# `loopline gc` keeps them while the run lives); a hit whose blobs are gone is a miss.
pipeline_cache = sa.Table(
    "pipeline_cache",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("outputs_json", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("child_run_id", sa.String(32), nullable=True),
    sa.Column("created_at", Millis, nullable=False),
)

pipeline_triggers = sa.Table(
    "pipeline_triggers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("pipeline", sa.String(256), nullable=False),
    # cron | new_data | alert
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec", sa.String(500), nullable=False),
    sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("executor", sa.String(16), nullable=False, server_default="local"),
    sa.Column("data_param", sa.String(128), nullable=False, server_default="dataset"),
    sa.Column("workdir", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("next_fire_at", Millis, nullable=True),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
)

# Every firing, with the event that caused it: (trigger, event) is unique, so an
# event is never turned into two runs even when a scheduler restarts mid-way.
pipeline_firings = sa.Table(
    "pipeline_firings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "trigger_id",
        sa.Integer,
        sa.ForeignKey("pipeline_triggers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
    # pending | running | succeeded | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pipeline_run_id", sa.String(32), nullable=True),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("fired_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.UniqueConstraint("trigger_id", "event_id"),
    sa.Index(None, "status"),
)

# One row per scheduler role: who holds the lease until when, and how far the event
# log has been consumed.
pipeline_scheduler = sa.Table(
    "pipeline_scheduler",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False, server_default=""),
    sa.Column("expires_at", Millis, nullable=False, server_default="0"),
    sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", Millis, nullable=False),
)

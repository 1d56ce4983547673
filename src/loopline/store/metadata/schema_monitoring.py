"""Tables of the monitoring capability (monitors, their runs and results, alerts).

Migration 0006 builds them; the autogenerate check in tests/contract/test_database.py
compares these tables with the migrations.
"""

from __future__ import annotations

import sqlalchemy as sa

from loopline.store.metadata.schema import BigId, Millis, metadata

__all__ = [
    "monitor_alerts",
    "monitor_profiles",
    "monitor_results",
    "monitor_runs",
    "monitors",
]

# A monitor: which deployment's log to compare with which reference, how often.
monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("reference", sa.String(600), nullable=False),
    sa.Column("target", sa.String(256), nullable=True),
    sa.Column("prediction", sa.String(256), nullable=True),
    # "3600000ms" (a time window) or "5000rows" (the latest rows).
    sa.Column("window", sa.String(32), nullable=False),
    sa.Column("schedule", sa.String(128), nullable=True),
    sa.Column("webhook", sa.Text, nullable=True),
    # Thresholds and per-column test overrides (JSON).
    sa.Column("config_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("last_run_at", Millis, nullable=True),
    sa.UniqueConstraint("project_id", "name"),
)

monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "monitor_id", sa.Integer, sa.ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("window_start", Millis, nullable=True),
    sa.Column("window_end", Millis, nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("dataset_drift", sa.Boolean, nullable=False),
    sa.Column("drift_share", sa.Float, nullable=False),
    # The whole report (JSON) for show and the UI.
    sa.Column("summary_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("started_at", Millis, nullable=False),
    sa.Column("finished_at", Millis, nullable=False),
    sa.Index(None, "monitor_id", "started_at"),
)

# One row per (run, column, metric): the history the UI charts per feature.
monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.BigInteger,
        sa.ForeignKey("monitor_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("monitor_id", sa.Integer, nullable=False),
    sa.Column("column_name", sa.String(256), nullable=False),
    # drift | quality | performance
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("p_value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Index(None, "monitor_id", "column_name", "created_at"),
    sa.Index(None, "run_id"),
)

monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "monitor_id", sa.Integer, sa.ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("run_id", sa.BigInteger, nullable=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("dataset", sa.String(600), nullable=True),
    # pending | delivered | failed | none (no webhook)
    sa.Column("delivery", sa.String(16), nullable=False, server_default="none"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("delivered_at", Millis, nullable=True),
    sa.Index(None, "monitor_id", "created_at"),
)

# Reference profiles computed from a dataset version's data, cached by its digest.
monitor_profiles = sa.Table(
    "monitor_profiles",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("profile_json", sa.Text, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
)

"""Tables of the collaboration capability (users, tokens, memberships, comments, audit).

Migration 0007 builds them; the autogenerate check in tests/contract/test_database.py
compares these tables with the migrations.

Secrets are never stored: passwords as argon2 hashes, API tokens and session ids as
SHA-256 digests (they are long random strings, so a slow hash would add nothing but
latency to every request).
"""

from __future__ import annotations

import sqlalchemy as sa

from loopline.store.metadata.schema import BigId, Millis, metadata

__all__ = [
    "api_tokens",
    "audit_log",
    "comments",
    "notification_cursors",
    "project_members",
    "project_policies",
    "rate_counters",
    "sessions",
    "users",
    "webhooks",
]

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False, server_default=""),
    sa.Column("password_hash", sa.Text, nullable=True),
    # Server administrators act as admin in every project.
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False, server_default=""),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    # The first characters, so a user can tell their tokens apart without the secret.
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=True),
    sa.Column("last_used_at", Millis, nullable=True),
    sa.Column("revoked_at", Millis, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=False),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    # viewer | editor | maintainer | admin
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_by", sa.String(256), nullable=False, server_default=""),
    sa.Column("created_at", Millis, nullable=False),
)

project_policies = sa.Table(
    "project_policies",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    # Approvals must come from a maintainer other than the version's author.
    sa.Column("four_eyes", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", Millis, nullable=False),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    # run | model_version | dataset_version
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(300), nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("mentions", sa.Text, nullable=False, server_default="[]"),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
    sa.Column("deleted_at", Millis, nullable=True),
    sa.Index(None, "entity_type", "entity_id"),
)

# How far each user has read their notifications feed (an event id).
notification_cursors = sa.Table(
    "notification_cursors",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("last_read_id", sa.BigInteger, nullable=False),
)

# One row per state-changing request the server answered: who, what, when, from where.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Millis, nullable=False, index=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("authenticated", sa.Boolean, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(2000), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("project", sa.String(256), nullable=False, server_default=""),
    sa.Column("origin", sa.String(64), nullable=False, server_default=""),
    sa.Column("user_agent", sa.String(512), nullable=False, server_default=""),
    sa.Index(None, "actor", "created_at"),
)

# Requests per user and fixed window, summed over every server process on the store.
rate_counters = sa.Table(
    "rate_counters",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hits", sa.Integer, nullable=False),
)

# Where a user's notifications (user_id set) or a project's (project_id set) are POSTed.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    # The last event id handed to a deliverer: claimed by compare-and-set, so one
    # server process delivers each event once however many run.
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(500), nullable=False, server_default=""),
)

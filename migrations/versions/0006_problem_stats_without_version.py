"""problem_stats without a write version (replicas pull changes through outcome_batches)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("problem_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_problem_stats_run_version")
        batch_op.drop_column("version")


def downgrade() -> None:
    # Every row gets the run's current version: a replica of the old code then re-pulls
    # nothing it has not seen, and its next full build reads everything anyway.
    with op.batch_alter_table("problem_stats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE problem_stats SET version = "
        "(SELECT runs.version FROM runs WHERE runs.id = problem_stats.run_id)"
    )
    with op.batch_alter_table("problem_stats", schema=None) as batch_op:
        batch_op.create_index("ix_problem_stats_run_version", ["run_id", "version"])

"""problem_priors: per (run, problem) prior pseudo-counts; runs.priors_version

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00

A new table and a column with a constant default (metadata-only on PostgreSQL 11+ and
SQLite): problem_stats and the outcome log are untouched, existing runs have no priors.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("priors_version", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "problem_priors",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Double(), nullable=False),
        sa.Column("successes", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_problem_priors_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name="fk_problem_priors_problem_id_problems",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "problem_id", name="pk_problem_priors"),
    )


def downgrade() -> None:
    op.drop_table("problem_priors")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a batch rebuild: dropping the old
    # runs table would cascade-delete every run's data (as in 0009).
    op.drop_column("runs", "priors_version")

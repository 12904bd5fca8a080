"""errored_attempts: per (run, problem) attempts that errored or timed out, never graded

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:30:00

A new table only: problem_stats, the outcome log and every pass rate are untouched (errored
attempts are kept apart from p, models.ErroredAttempts). Existing runs start with none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "errored_attempts",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("errored", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_errored_attempts_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name="fk_errored_attempts_problem_id_problems",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "problem_id", name="pk_errored_attempts"),
    )


def downgrade() -> None:
    op.drop_table("errored_attempts")

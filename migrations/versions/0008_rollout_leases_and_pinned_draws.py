"""rollout leases and pinned draws (several consumers of one run)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_leases",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("claimer", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("attempts_at_claim", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name=op.f("fk_rollout_leases_problem_id_problems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_rollout_leases_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "problem_id", name=op.f("pk_rollout_leases")),
    )
    op.create_index(
        "ix_rollout_leases_run_expires", "rollout_leases", ["run_id", "expires_at"], unique=False
    )
    op.create_table(
        "pinned_draws",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("draw", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_pinned_draws_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_pinned_draws")),
    )


def downgrade() -> None:
    op.drop_table("pinned_draws")
    op.drop_index("ix_rollout_leases_run_expires", table_name="rollout_leases")
    op.drop_table("rollout_leases")

"""run history: per-run difficulty snapshots over training steps

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("unseen", sa.BigInteger(), nullable=False),
        sa.Column("intractable", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.BigInteger(), nullable=False),
        sa.Column("mastered", sa.BigInteger(), nullable=False),
        sa.Column("mean_pass_rate", sa.Double(), nullable=True),
        sa.Column("mean_weight", sa.Double(), nullable=False),
        sa.Column("effective_problems", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_run_history_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_history")),
        sa.UniqueConstraint("run_id", "step", name=op.f("uq_run_history_run_id")),
    )


def downgrade() -> None:
    op.drop_table("run_history")

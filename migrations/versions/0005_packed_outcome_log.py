"""outcome log packed per request (outcome_batches replaces outcomes)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 22:40:00

Existing per-outcome rows are converted: one outcome_batches row per (run, version), i.e. per
accepted request, entries in id order. The downgrade expands them back.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NO_STEP = -1


def upgrade() -> None:
    op.create_table(
        "outcome_batches",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("problem_ids", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.LargeBinary(), nullable=False),
        sa.Column("successes", sa.LargeBinary(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_outcome_batches_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_batches")),
    )
    with op.batch_alter_table("outcome_batches", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_batches_run_version", ["run_id", "version"])

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT run_id, version, problem_id, attempts, successes, step "
            "FROM outcomes ORDER BY run_id, version, id"
        )
    ).all()
    now = datetime.now(UTC).replace(tzinfo=None)  # UTC, stored like the models store it
    batches = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end][:2] != rows[start][:2]:
            part = rows[start:end]
            steps = [NO_STEP if r[5] is None else r[5] for r in part]
            batches.append(
                {
                    "run_id": part[0][0],
                    "version": part[0][1],
                    "count": len(part),
                    "problem_ids": np.array([r[2] for r in part], "<i8").tobytes(),
                    "attempts": np.array([r[3] for r in part], "<i4").tobytes(),
                    "successes": np.array([r[4] for r in part], "<i4").tobytes(),
                    "steps": np.array(steps, "<i8").tobytes(),
                    "created_at": now,
                }
            )
            start = end
    table = sa.table(
        "outcome_batches",
        *(sa.column(c) for c in ("run_id", "version", "count", "problem_ids", "attempts")),
        sa.column("successes"),
        sa.column("steps"),
        sa.column("created_at", sa.DateTime()),
    )
    for batch in batches:
        bind.execute(sa.insert(table).values(**batch))

    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_outcomes_run_problem")
    op.drop_table("outcomes")


def downgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name=op.f("fk_outcomes_problem_id_problems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_outcomes_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index("ix_outcomes_run_problem", ["run_id", "problem_id"], unique=False)
    bind = op.get_bind()
    batches = bind.execute(
        sa.text(
            "SELECT run_id, version, problem_ids, attempts, successes, steps "
            "FROM outcome_batches ORDER BY id"
        )
    ).all()
    table = sa.table(
        "outcomes",
        *(sa.column(c) for c in ("run_id", "version", "problem_id", "attempts", "successes")),
        sa.column("step"),
    )
    for run_id, version, pids, attempts, successes, steps in batches:
        rows = [
            {
                "run_id": run_id,
                "version": version,
                "problem_id": int(p),
                "attempts": int(a),
                "successes": int(s),
                "step": None if t == NO_STEP else int(t),
            }
            for p, a, s, t in zip(
                np.frombuffer(pids, "<i8"),
                np.frombuffer(attempts, "<i4"),
                np.frombuffer(successes, "<i4"),
                np.frombuffer(steps, "<i8"),
                strict=True,
            )
        ]
        if rows:
            bind.execute(sa.insert(table), rows)
    with op.batch_alter_table("outcome_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_batches_run_version")
    op.drop_table("outcome_batches")

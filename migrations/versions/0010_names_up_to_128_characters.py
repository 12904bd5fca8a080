"""datasets.name and runs.name up to 128 characters (letters of both cases)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 23:30:00

PostgreSQL: VARCHAR(64) -> VARCHAR(128), a catalog-only change (no table rewrite, the unique
indexes stay valid). SQLite does not enforce a VARCHAR length, so a 128-character name already
fits; its declared type stays (models.NameColumn), since changing it means rebuilding the
table, and dropping the old runs or datasets table with foreign keys on would cascade-delete
their problems, stats and outcome logs. Existing rows are untouched, and so are existing
runs' estimator windows (the API's new default, 'latest', applies to runs created after).

The downgrade refuses while a name is longer than 64 characters: narrowing would fail half
way or cut names that other rows and clients refer to.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("datasets", "runs")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in TABLES:
        op.alter_column(
            table,
            "name",
            type_=sa.String(128),
            existing_type=sa.String(64),
            existing_nullable=False,
        )


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        longest = bind.execute(sa.text(f"SELECT max(length(name)) FROM {table}")).scalar()
        if longest is not None and longest > 64:
            raise RuntimeError(
                f"{table} has names longer than 64 characters (up to {longest}): rename or "
                "delete them before downgrading below 0010"
            )
    if bind.dialect.name == "sqlite":
        return
    for table in TABLES:
        op.alter_column(
            table,
            "name",
            type_=sa.String(64),
            existing_type=sa.String(128),
            existing_nullable=False,
        )

"""problem_stats fillfactor 70 on PostgreSQL (room for HOT updates)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 23:25:00

Only pages written from now on keep the free space; `VACUUM FULL problem_stats` (which
locks the table) rewrites existing ones. SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE problem_stats SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE problem_stats RESET (fillfactor)")

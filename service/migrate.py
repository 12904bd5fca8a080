"""Run Alembic migrations programmatically (``paced db upgrade``, ``paced serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_PACKAGE = Path(__file__).resolve().parent
# An installed server carries its migrations inside the package (packaging/server); in a
# checkout they are migrations/ at the repository root (where the Alembic CLI finds them too).
MIGRATIONS = next(
    path for path in (_PACKAGE / "_migrations", _PACKAGE.parent / "migrations") if path.is_dir()
)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrated schema differ (alembic check)."""
    command.check(alembic_config(database_url))

"""Alembic upgrades an empty database to head and the models match it (no drift)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from service import migrate
from service.db import normalise_url
from service.models import Base
from tests.conftest import create_pg_database, drop_pg_database


def assert_upgrades_cleanly(url: str) -> None:
    migrate.upgrade(url)
    migrate.check(url)  # raises alembic.util.CommandError on any drift
    engine = create_engine(normalise_url(url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_empty_sqlite_upgrades_to_head_without_drift(tmp_path):
    assert_upgrades_cleanly(f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.mark.postgres
def test_empty_postgres_upgrades_to_head_without_drift(postgres_server_url):
    url = create_pg_database(postgres_server_url)
    try:
        assert_upgrades_cleanly(url)
    finally:
        drop_pg_database(postgres_server_url, url)


def test_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    migrate.check(url)

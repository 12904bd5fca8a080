"""Shared fixtures: every API test runs on SQLite and, when configured, on real PostgreSQL.

PACED_TEST_DATABASE_URL points at a PostgreSQL server (the Makefile and .ci/run set it to
the local server). Each test session creates its own uniquely named database there, so
concurrent runs never collide, and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service import migrate
from service.db import normalise_url
from service.models import Base

PG_URL = os.environ.get("PACED_TEST_DATABASE_URL") or None
BACKENDS = ["sqlite", "postgres"] if PG_URL else ["sqlite"]


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    if not PG_URL:
        pytest.skip("PACED_TEST_DATABASE_URL is empty: no PostgreSQL server to test against")
    return normalise_url(PG_URL)


def create_pg_database(server_url: str) -> str:
    """Create a fresh database on the server; returns its URL."""
    name = f"paced_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_database_url(postgres_server_url: str) -> Iterator[str]:
    url = create_pg_database(postgres_server_url)
    migrate.upgrade(url)
    yield url
    drop_pg_database(postgres_server_url, url)


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'paced.db'}"
    migrate.upgrade(url)
    return url


def wipe(url: str) -> None:
    """Empty every table (faster than re-migrating for each test)."""
    engine = create_engine(normalise_url(url))
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty, unmigrated database of each backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'paced.db'}"
        return
    server_url = request.getfixturevalue("postgres_server_url")
    url = create_pg_database(server_url)
    yield url
    drop_pg_database(server_url, url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    name = "pg_database_url" if request.param == "postgres" else "sqlite_database_url"
    url = request.getfixturevalue(name)
    wipe(url)
    return url


@pytest.fixture
def settings(database_url: str):
    from service.settings import Settings

    return Settings(database_url=database_url, sync_interval_s=0.0)


@pytest.fixture
def app(settings):
    from service.app import create_app

    application = create_app(settings)
    yield application
    application.state.ctx.engine.dispose()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client

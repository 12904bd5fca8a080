"""Alembic upgrades an empty database to head and the models match it (no drift)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import Session

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


def _old_log_rows() -> list[dict]:
    # Two accepted requests (versions 1 and 2) for run 1; the second had no step on one item.
    return [
        {"run_id": 1, "problem_id": 2, "attempts": 8, "successes": 3, "step": 0, "version": 1},
        {"run_id": 1, "problem_id": 1, "attempts": 4, "successes": 4, "step": 0, "version": 1},
        {"run_id": 1, "problem_id": 2, "attempts": 8, "successes": 5, "step": None, "version": 2},
    ]


def _seed_0004(url: str) -> None:
    migrate.upgrade(url, "0004")
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, content_version, created_at) "
                "VALUES (1, 'd', 0, CURRENT_TIMESTAMP)"
            )
        )
        for pid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO problems (id, dataset_id, external_id, prompt) "
                    "VALUES (:i, 1, :e, 'q')"
                ),
                {"i": pid, "e": f"p{pid}"},
            )
        conn.execute(
            text(
                "INSERT INTO runs (id, name, dataset_id, kernel_alpha, kernel_beta, estimator_kind,"
                " prior_alpha, prior_beta, version, created_at)"
                " VALUES (1, 'r', 1, 1, 1, 'empirical', 1, 1, 2, CURRENT_TIMESTAMP)"
            )
        )
        for row in _old_log_rows():
            conn.execute(
                text(
                    "INSERT INTO outcomes (run_id, problem_id, attempts, successes, step, version)"
                    " VALUES (:run_id, :problem_id, :attempts, :successes, :step, :version)"
                ),
                row,
            )
    engine.dispose()


def test_0005_packs_the_per_outcome_log_and_the_downgrade_restores_it(backend_url):
    from service.store import outcome_log

    url = backend_url
    _seed_0004(url)
    migrate.upgrade(url)
    engine = create_engine(normalise_url(url))
    with Session(engine) as session:
        log = outcome_log.read(session, 1)
    old = _old_log_rows()
    assert log["problem_ids"].tolist() == [r["problem_id"] for r in old]
    assert log["attempts"].tolist() == [r["attempts"] for r in old]
    assert log["successes"].tolist() == [r["successes"] for r in old]
    assert log["steps"].tolist() == [0, 0, outcome_log.NO_STEP]
    assert log["version"].tolist() == [1, 1, 2]
    engine.dispose()

    migrate.downgrade(url, "0004")
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, problem_id, attempts, successes, step, version FROM outcomes "
                "ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [tuple(r.values()) for r in old]

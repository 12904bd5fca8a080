"""Outcome log, per-problem aggregates and idempotency records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, case, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import IdempotencyKey, Outcome, Problem, ProblemStats
from service.store.bulk import chunks, fetch_columns

CHUNK = 2000


def append_outcomes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append to the outcome log (executemany; one round trip per chunk)."""
    for part in chunks(list(rows), 5000):
        session.execute(insert(Outcome), list(part))


def upsert_stats(
    session: Session,
    run_id: int,
    version: int,
    aggregated: dict[str, np.ndarray],
    half_life_steps: float | None,
) -> None:
    """Merge pre-aggregated per-problem deltas into problem_stats with SQL increments.

    ``aggregated`` holds one entry per distinct problem (PostgreSQL rejects an upsert that
    touches a row twice): problem_id, attempts/successes (effective at last_step), raw totals
    and last_step. With a half-life, the side with the older step is discounted by
    2^(-Δ/h) inside the UPDATE, so concurrent writers never read-modify-write.
    """
    dialect = session.bind.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ProblemStats.__table__
    n = len(aggregated["problem_id"])
    values = [
        {
            "run_id": run_id,
            "problem_id": int(aggregated["problem_id"][i]),
            "attempts": float(aggregated["attempts"][i]),
            "successes": float(aggregated["successes"][i]),
            "total_attempts": int(aggregated["total_attempts"][i]),
            "total_successes": int(aggregated["total_successes"][i]),
            "last_step": int(aggregated["last_step"][i]),
            "version": version,
        }
        for i in range(n)
    ]
    for part in chunks(values, CHUNK):
        stmt = insert_fn(table).values(list(part))
        ex = stmt.excluded
        if half_life_steps is None:
            attempts = table.c.attempts + ex.attempts
            successes = table.c.successes + ex.successes
        else:
            h = literal(float(half_life_steps))
            newer = ex.last_step >= table.c.last_step
            old_factor = func.power(2.0, (table.c.last_step - ex.last_step) / h)
            new_factor = func.power(2.0, (ex.last_step - table.c.last_step) / h)
            attempts = case(
                (newer, table.c.attempts * old_factor + ex.attempts),
                else_=table.c.attempts + ex.attempts * new_factor,
            )
            successes = case(
                (newer, table.c.successes * old_factor + ex.successes),
                else_=table.c.successes + ex.successes * new_factor,
            )
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "problem_id"],
            set_={
                "attempts": attempts,
                "successes": successes,
                "total_attempts": table.c.total_attempts + ex.total_attempts,
                "total_successes": table.c.total_successes + ex.total_successes,
                "last_step": case(
                    (ex.last_step > table.c.last_step, ex.last_step), else_=table.c.last_step
                ),
                "version": ex.version,
            },
        )
        session.execute(stmt)


STAT_COLUMNS = (
    ProblemStats.problem_id,
    ProblemStats.attempts,
    ProblemStats.successes,
    ProblemStats.last_step,
)
STAT_DTYPES = (np.int64, np.float64, np.float64, np.int64)


def stats_since(session: Session, run_id: int, after_version: int) -> list[np.ndarray]:
    """[problem_id, attempts, successes, last_step] columns of rows written after a version."""
    stmt = select(*STAT_COLUMNS).where(
        ProblemStats.run_id == run_id, ProblemStats.version > after_version
    )
    return fetch_columns(session, stmt, STAT_DTYPES)


def stats_for_problem(session: Session, run_id: int, problem_id: int) -> ProblemStats | None:
    return session.get(ProblemStats, (run_id, problem_id))


def stats_page(
    session: Session, run_id: int, dataset_id: int, after_problem_id: int, limit: int
) -> list[tuple]:
    """Problems of the dataset after a cursor, with their stats (NULLs when unseen)."""
    stmt = (
        select(
            Problem.id,
            Problem.external_id,
            ProblemStats.total_attempts,
            ProblemStats.total_successes,
            ProblemStats.attempts,
            ProblemStats.successes,
            ProblemStats.last_step,
        )
        .outerjoin(
            ProblemStats,
            (ProblemStats.problem_id == Problem.id) & (ProblemStats.run_id == run_id),
        )
        .where(Problem.dataset_id == dataset_id, Problem.id > after_problem_id)
        .order_by(Problem.id)
        .limit(limit)
    )
    return list(session.execute(stmt))


def stats_for_problems(
    session: Session, run_id: int, problem_ids: Sequence[int]
) -> dict[int, tuple]:
    """problem_id -> (total_attempts, total_successes, attempts, successes, last_step)."""
    out: dict[int, tuple] = {}
    for part in chunks(list(problem_ids), CHUNK):
        stmt = select(
            ProblemStats.problem_id,
            ProblemStats.total_attempts,
            ProblemStats.total_successes,
            ProblemStats.attempts,
            ProblemStats.successes,
            ProblemStats.last_step,
        ).where(ProblemStats.run_id == run_id, ProblemStats.problem_id.in_(part))
        for row in session.execute(stmt):
            out[row[0]] = row[1:]
    return out


def outcome_totals(session: Session, run_id: int) -> tuple[int, int]:
    """(sum of attempts, count of outcome rows) in the log — used by reliability checks."""
    row = session.execute(
        select(func.coalesce(func.sum(Outcome.attempts), 0), func.count()).where(
            Outcome.run_id == run_id
        )
    ).one()
    return int(row[0]), int(row[1])


def get_idempotency(session: Session, run_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.run_id == run_id, IdempotencyKey.key == key)
    )


def insert_idempotency(
    session: Session, run_id: int, key: str, body_hash: str, response: dict[str, Any]
) -> None:
    session.execute(
        insert(IdempotencyKey).values(
            run_id=run_id, key=key, body_hash=body_hash, response=response
        )
    )


__all__ = ["bindparam"]

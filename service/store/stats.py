"""Per-problem aggregates (problem_stats) and idempotency records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.models import IdempotencyKey, Problem, ProblemStats
from service.store.bulk import chunks, fetch_columns, rows_to_columns

CHUNK = 2000


# Effective counts merge with the stored ones: with a half-life, the side with the older
# step is discounted by 2^(-Δ/h) inside the UPDATE, so concurrent writers never
# read-modify-write. `excluded` is the row that failed to insert.
_DECAY_MERGE = """CASE WHEN excluded.last_step >= problem_stats.last_step
    THEN problem_stats.{col} * power(2.0, (problem_stats.last_step - excluded.last_step) / {h})
         + excluded.{col}
    ELSE problem_stats.{col}
         + excluded.{col} * power(2.0, (excluded.last_step - problem_stats.last_step) / {h})
    END"""
_PLAIN_MERGE = "problem_stats.{col} + excluded.{col}"
# Window "latest": a newer round replaces the stored counts, the same round adds to them, an
# older one is ignored (its outcomes stay in the outcome log).
_LATEST_MERGE = """CASE WHEN excluded.last_step > problem_stats.last_step THEN excluded.{col}
    WHEN excluded.last_step = problem_stats.last_step THEN problem_stats.{col} + excluded.{col}
    ELSE problem_stats.{col}
    END"""
_UPSERT_STATS = """INSERT INTO problem_stats
    (run_id, problem_id, attempts, successes, total_attempts, total_successes, last_step)
    {source}
    ON CONFLICT (run_id, problem_id) DO UPDATE SET
    attempts = {attempts},
    successes = {successes},
    total_attempts = problem_stats.total_attempts + excluded.total_attempts,
    total_successes = problem_stats.total_successes + excluded.total_successes,
    last_step = CASE WHEN excluded.last_step > problem_stats.last_step
        THEN excluded.last_step ELSE problem_stats.last_step END
    RETURNING problem_id, attempts, successes, last_step"""


# One statement over the whole request on both databases (PostgreSQL: arrays, not 10,000
# round trips; SQLite: a JSON array parsed in C), so that RETURNING can hand back the
# merged rows. `WHERE true` is SQLite's required disambiguation of an upsert from SELECT.
_SQLITE_SOURCE = """SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3,
        j.value ->> 4, j.value ->> 5 FROM json_each(?) AS j
    WHERE true"""
# %b: arrays travel in binary (no text formatting and parsing of 60,000 numbers).
_PG_SOURCE = """SELECT %s, u.p, u.a, u.s, u.ta, u.ts, u.l FROM unnest(
        %b::bigint[], %b::float8[], %b::float8[], %b::bigint[], %b::bigint[], %b::bigint[]
    ) AS u(p, a, s, ta, ts, l)
    WHERE true"""


STAT_COLUMNS = (
    ProblemStats.problem_id,
    ProblemStats.attempts,
    ProblemStats.successes,
    ProblemStats.last_step,
)
STAT_DTYPES = (np.int64, np.float64, np.float64, np.int64)


def upsert_stats(
    session: Session,
    run_id: int,
    aggregated: dict[str, np.ndarray],
    half_life_steps: float | None,
    window: str = "all",
) -> list[np.ndarray]:
    """Merge pre-aggregated per-problem deltas into problem_stats with SQL increments;
    returns the merged rows as [problem_id, attempts, successes, last_step] columns.

    ``aggregated`` holds one entry per distinct problem (PostgreSQL rejects an upsert that
    touches a row twice): problem_id, attempts/successes (effective at last_step), raw
    totals and last_step.
    """
    if window == "latest":
        merge = {col: _LATEST_MERGE.format(col=col) for col in ("attempts", "successes")}
    elif half_life_steps is None:
        merge = {col: _PLAIN_MERGE.format(col=col) for col in ("attempts", "successes")}
    else:
        # A float literal formatted by us (validated finite > 0), not user text.
        h = repr(float(half_life_steps))
        merge = {col: _DECAY_MERGE.format(col=col, h=h) for col in ("attempts", "successes")}
    columns = [
        aggregated[name].tolist()
        for name in (
            "problem_id",
            "attempts",
            "successes",
            "total_attempts",
            "total_successes",
            "last_step",
        )
    ]
    if not columns[0]:
        return [np.empty(0, dtype=dtype) for dtype in STAT_DTYPES]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sql = _UPSERT_STATS.format(source=_PG_SOURCE, **merge)
        params: tuple = (run_id, *columns)
    else:
        sql = _UPSERT_STATS.format(source=_SQLITE_SOURCE, **merge)
        params = (run_id, orjson.dumps(list(zip(*columns, strict=True))).decode())
    return rows_to_columns(connection.exec_driver_sql(sql, params).fetchall(), STAT_DTYPES)


def all_stats(session: Session, run_id: int) -> list[np.ndarray]:
    """[problem_id, attempts, successes, last_step] columns of every row of the run."""
    stmt = select(*STAT_COLUMNS).where(ProblemStats.run_id == run_id)
    return fetch_columns(session, stmt, STAT_DTYPES)


def stats_of(session: Session, run_id: int, problem_ids: np.ndarray) -> list[np.ndarray]:
    """The same columns for the given problems (those with a row), one statement."""
    if len(problem_ids) == 0:
        return [np.empty(0, dtype=dtype) for dtype in STAT_DTYPES]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT problem_id, attempts, successes, last_step FROM problem_stats "
            # The cast matters: untyped, a list of ints arrives as numeric[] and the
            # comparison can no longer use the primary key (a 10,000-id scan took 0.6 s).
            "WHERE run_id = %s AND problem_id = ANY(%b::bigint[])"
        )
        params: tuple = (run_id, np.asarray(problem_ids).tolist())
    else:
        sql = (
            "SELECT s.problem_id, s.attempts, s.successes, s.last_step FROM json_each(?) AS j "
            "CROSS JOIN problem_stats AS s WHERE s.run_id = ? AND s.problem_id = j.value"
        )
        params = (orjson.dumps(np.asarray(problem_ids).tolist()).decode(), run_id)
    return rows_to_columns(connection.exec_driver_sql(sql, params).fetchall(), STAT_DTYPES)


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

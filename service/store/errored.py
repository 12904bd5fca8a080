"""Errored attempts per (run, problem): added up in the ingest transaction, read by the views.

Kept out of problem_stats (and so out of every pass rate) on purpose: see models.ErroredAttempts.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.models import ErroredAttempts
from service.store.bulk import upsert_rows

_UPSERT = """INSERT INTO errored_attempts (run_id, problem_id, errored, last_step)
    {source}
    ON CONFLICT (run_id, problem_id) DO UPDATE SET
    errored = errored_attempts.errored + excluded.errored,
    last_step = CASE WHEN excluded.last_step > errored_attempts.last_step
        THEN excluded.last_step ELSE errored_attempts.last_step END"""
_PG_SOURCE = "SELECT %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])"
_SQLITE_SOURCE = (
    "SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?) AS j WHERE true"
)


def add(
    session: Session, run_id: int, problem_ids: np.ndarray, errored: np.ndarray, steps: np.ndarray
) -> None:
    """Add one request's errored attempts (problem ids distinct, each errored > 0)."""
    if len(problem_ids) == 0:
        return
    columns = [np.asarray(c, dtype=np.int64).tolist() for c in (problem_ids, errored, steps)]
    upsert_rows(session, _UPSERT, (_PG_SOURCE, _SQLITE_SOURCE), run_id, columns)


def of_problem(session: Session, run_id: int, problem_id: int) -> int:
    stmt = select(ErroredAttempts.errored).where(
        ErroredAttempts.run_id == run_id, ErroredAttempts.problem_id == problem_id
    )
    return int(session.execute(stmt).scalar() or 0)


def of_run(session: Session, run_id: int) -> int:
    stmt = select(func.coalesce(func.sum(ErroredAttempts.errored), 0)).where(
        ErroredAttempts.run_id == run_id
    )
    return int(session.execute(stmt).scalar_one())

"""Per-problem priors of a run (problem_priors) and the run's priors version.

Written only by prior uploads, read when an index is built or its run's priors_version moved
(replicas), and by the views that say what part of a count is prior.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.models import Run
from service.prior_models import ProblemPrior
from service.store.bulk import chunks, fetch_columns, upsert_rows

CHUNK = 2000
_UPSERT = """INSERT INTO problem_priors (run_id, problem_id, attempts, successes)
    {source}
    ON CONFLICT (run_id, problem_id) DO UPDATE SET
    attempts = excluded.attempts, successes = excluded.successes"""
# One statement per request on both databases, as store/stats.py's upsert.
_PG_SOURCE = "SELECT %s, * FROM unnest(%b::bigint[], %b::float8[], %b::float8[])"
_SQLITE_SOURCE = (
    "SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?) AS j WHERE true"
)
PRIOR_DTYPES = (np.int64, np.float64, np.float64)


def bump_version(session: Session, run_id: int) -> int:
    """Increment the run's priors version (taking its row lock until commit, so writers of
    one run's priors commit in order); returns the new version."""
    stmt = (
        update(Run)
        .where(Run.id == run_id)
        .values(priors_version=Run.priors_version + 1)
        .returning(Run.priors_version)
    )
    return int(session.execute(stmt).scalar_one())


def sync_state(session: Session, run_id: int) -> tuple[int, int | None, int]:
    """(version, max_step, priors_version) as committed now: what an index sync reads, in one
    statement."""
    row = session.execute(
        select(Run.version, Run.max_step, Run.priors_version).where(Run.id == run_id)
    ).one()
    return int(row[0]), row[1], int(row[2] or 0)


def upsert(
    session: Session,
    run_id: int,
    problem_ids: np.ndarray,
    attempts: np.ndarray,
    successes: np.ndarray,
) -> None:
    """Set these problems' priors (ids distinct; absolute values: a repeat writes the same)."""
    if len(problem_ids) == 0:
        return
    columns = [
        np.asarray(problem_ids, dtype=np.int64).tolist(),
        np.asarray(attempts, dtype=np.float64).tolist(),
        np.asarray(successes, dtype=np.float64).tolist(),
    ]
    upsert_rows(session, _UPSERT, (_PG_SOURCE, _SQLITE_SOURCE), run_id, columns)


def clear(session: Session, run_id: int) -> None:
    session.execute(delete(ProblemPrior).where(ProblemPrior.run_id == run_id))


def all_priors(session: Session, run_id: int) -> list[np.ndarray]:
    """[problem_id, attempts, successes] columns of every prior of the run."""
    stmt = select(ProblemPrior.problem_id, ProblemPrior.attempts, ProblemPrior.successes).where(
        ProblemPrior.run_id == run_id
    )
    return fetch_columns(session, stmt, PRIOR_DTYPES)


def of_problems(
    session: Session, run_id: int, problem_ids: Sequence[int]
) -> dict[int, tuple[float, float]]:
    """problem_id -> (prior attempts, prior successes), for those with a prior."""
    out: dict[int, tuple[float, float]] = {}
    for part in chunks(list(problem_ids), CHUNK):
        stmt = select(ProblemPrior.problem_id, ProblemPrior.attempts, ProblemPrior.successes).where(
            ProblemPrior.run_id == run_id, ProblemPrior.problem_id.in_(part)
        )
        for pid, attempts, successes in session.execute(stmt):
            out[int(pid)] = (float(attempts), float(successes))
    return out


def count(session: Session, run_id: int) -> int:
    stmt = select(func.count()).select_from(ProblemPrior).where(ProblemPrior.run_id == run_id)
    return int(session.execute(stmt).scalar() or 0)

"""Rollout leases (rollout_leases) and pinned draws (pinned_draws): every SQL statement of
the several-consumers semantics lives here."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import PinnedDraw, ProblemStats, RolloutLease

# pg_advisory_xact_lock(namespace, run id): the first key keeps these locks apart from any
# other advisory lock the database may see.
_CLAIM_LOCK_NAMESPACE = 0x5ACED


def _insert(session: Session, table):
    dialect = session.connection().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def lock_claims(session: Session, run_id: int, now: float) -> None:
    """Serialise the claims of one run until commit, and drop its expired leases.

    Without it two claimers whose rounds overlap could each wait on a row the other inserted
    (a deadlock PostgreSQL resolves by failing one). SQLite serialises writers anyway: the
    DELETE takes its write lock first, so every read after it is current."""
    if session.connection().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :run)"),
            {"ns": _CLAIM_LOCK_NAMESPACE, "run": run_id},
        )
    session.execute(
        delete(RolloutLease).where(RolloutLease.run_id == run_id, RolloutLease.expires_at <= now)
    )


def active(session: Session, run_id: int, now: float) -> np.ndarray:
    """Ids of the run's problems under a lease that holds: not expired, and not graded since
    it was taken (total attempts still at most what they were then)."""
    attempts = func.coalesce(ProblemStats.total_attempts, 0)
    stmt = (
        select(RolloutLease.problem_id)
        .outerjoin(
            ProblemStats,
            (ProblemStats.run_id == RolloutLease.run_id)
            & (ProblemStats.problem_id == RolloutLease.problem_id),
        )
        .where(
            RolloutLease.run_id == run_id,
            RolloutLease.expires_at > now,
            attempts <= RolloutLease.attempts_at_claim,
        )
    )
    return np.fromiter(session.scalars(stmt), dtype=np.int64)


def claim(
    session: Session,
    run_id: int,
    problem_ids: np.ndarray,
    claimer: str,
    expires_at: float,
    now: float,
) -> np.ndarray:
    """Lease the problems that are free (no lease, or one expired or graded); returns the
    ids claimed. Rows go in ascending id order, as every claimer's do."""
    ids = np.unique(np.asarray(problem_ids, dtype=np.int64))
    if len(ids) == 0:
        return ids
    current = dict(
        session.execute(
            select(ProblemStats.problem_id, ProblemStats.total_attempts).where(
                ProblemStats.run_id == run_id, ProblemStats.problem_id.in_(ids.tolist())
            )
        ).all()
    )
    rows = [
        {
            "run_id": run_id,
            "problem_id": pid,
            "claimer": claimer,
            "expires_at": expires_at,
            "attempts_at_claim": int(current.get(pid, 0)),
        }
        for pid in ids.tolist()
    ]
    stmt = _insert(session, RolloutLease).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RolloutLease.run_id, RolloutLease.problem_id],
        set_={
            "claimer": stmt.excluded.claimer,
            "expires_at": stmt.excluded.expires_at,
            "attempts_at_claim": stmt.excluded.attempts_at_claim,
        },
        where=(RolloutLease.expires_at <= now)
        | (RolloutLease.attempts_at_claim < stmt.excluded.attempts_at_claim),
    ).returning(RolloutLease.problem_id)
    return np.fromiter(session.scalars(stmt), dtype=np.int64)


def get_draw(session: Session, run_id: int, key: str) -> PinnedDraw | None:
    return session.get(PinnedDraw, (run_id, key))


def insert_draw(
    session: Session, run_id: int, key: str, body_hash: str, draw: dict[str, Any]
) -> bool:
    """Store a draw under its key; False when the key was taken first (the caller then
    serves the stored one)."""
    stmt = (
        _insert(session, PinnedDraw)
        .values(run_id=run_id, key=key, body_hash=body_hash, draw=draw)
        .on_conflict_do_nothing(index_elements=[PinnedDraw.run_id, PinnedDraw.key])
        .returning(PinnedDraw.key)
    )
    return session.scalar(stmt) is not None

"""The outcome log: one packed row per accepted outcomes request (see models.OutcomeBatch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.models import OutcomeBatch, utcnow

NO_STEP = -1  # stored where the client sent no step (steps are validated >= 0)
DTYPES = {"problem_ids": "<i8", "attempts": "<i4", "successes": "<i4", "steps": "<i8"}


def append(
    session: Session,
    run_id: int,
    version: int,
    problem_ids: np.ndarray,
    attempts: np.ndarray,
    successes: np.ndarray,
    steps: Sequence[int | None],
) -> None:
    packed_steps = np.fromiter(
        (NO_STEP if s is None else s for s in steps), dtype=np.int64, count=len(steps)
    )
    columns = {
        "problem_ids": problem_ids,
        "attempts": attempts,
        "successes": successes,
        "steps": packed_steps,
    }
    packed = {name: np.asarray(col).astype(DTYPES[name]).tobytes() for name, col in columns.items()}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # %b: send the blobs in binary; psycopg's default text format escapes every byte
        # (15 ms for a 10,000-outcome request, against ~1 ms).
        connection.exec_driver_sql(
            "INSERT INTO outcome_batches (run_id, version, count, problem_ids, attempts, "
            "successes, steps, created_at) VALUES (%s, %s, %s, %b, %b, %b, %b, %s)",
            (run_id, version, len(problem_ids), *packed.values(), utcnow()),
        )
        return
    session.execute(
        insert(OutcomeBatch).values(
            run_id=run_id,
            version=version,
            count=len(problem_ids),
            **packed,
        )
    )


def read(session: Session, run_id: int, after_version: int = 0) -> dict[str, np.ndarray]:
    """The run's whole log in acceptance order: problem_ids, attempts, successes, steps
    (-1 = no step) and version, one entry per outcome (only requests after `after_version`,
    when given: what a sync of the predicted estimator reads)."""
    stmt = (
        select(
            OutcomeBatch.version,
            OutcomeBatch.count,
            OutcomeBatch.problem_ids,
            OutcomeBatch.attempts,
            OutcomeBatch.successes,
            OutcomeBatch.steps,
        )
        .where(OutcomeBatch.run_id == run_id, OutcomeBatch.version > after_version)
        .order_by(OutcomeBatch.version, OutcomeBatch.id)
    )
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*DTYPES, "version")}
    for version, count, *blobs in session.execute(stmt):
        for name, blob in zip(DTYPES, blobs, strict=True):
            parts[name].append(np.frombuffer(blob, dtype=DTYPES[name]).astype(np.int64))
        parts["version"].append(np.full(count, version, dtype=np.int64))
    return {
        name: np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        for name, chunks in parts.items()
    }


def problem_ids_since(session: Session, run_id: int, after_version: int) -> np.ndarray:
    """Distinct problems with outcomes accepted after a run version: what a replica re-reads."""
    stmt = select(OutcomeBatch.problem_ids).where(
        OutcomeBatch.run_id == run_id, OutcomeBatch.version > after_version
    )
    blobs = session.execute(stmt).scalars().all()
    if not blobs:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate([np.frombuffer(b, dtype=DTYPES["problem_ids"]) for b in blobs]))

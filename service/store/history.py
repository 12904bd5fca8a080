"""Run history snapshots: one row per (run, step), bounded by thinning older rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import RunHistory


class Snapshot(TypedDict):
    """A run_history row but its run and step (domain/history.snapshot takes it)."""

    unseen: int
    intractable: int
    frontier: int
    mastered: int
    mean_pass_rate: float | None
    mean_weight: float
    effective_problems: float
    created_at: datetime


SNAPSHOT_FIELDS = (
    "unseen",
    "intractable",
    "frontier",
    "mastered",
    "mean_pass_rate",
    "mean_weight",
    "effective_problems",
    "created_at",
)


def upsert_snapshot(session: Session, run_id: int, step: int, values: Snapshot) -> None:
    """Write the snapshot of a step; a newer snapshot of the same step replaces the older one.

    ON CONFLICT makes concurrent writers (threads or replicas) of one step safe without a read.
    """
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = {"run_id": run_id, "step": step, **values}
    stmt = insert_fn(cast(Table, RunHistory.__table__)).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "step"],
        set_={k: stmt.excluded[k] for k in SNAPSHOT_FIELDS},
    )
    session.execute(stmt)


def ids_in_step_order(session: Session, run_id: int) -> list[int]:
    stmt = select(RunHistory.id).where(RunHistory.run_id == run_id).order_by(RunHistory.step)
    return list(session.scalars(stmt))


def delete_ids(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(delete(RunHistory).where(RunHistory.id.in_(list(ids))))


def list_for_run(session: Session, run_id: int) -> list[RunHistory]:
    stmt = select(RunHistory).where(RunHistory.run_id == run_id).order_by(RunHistory.step)
    return list(session.scalars(stmt))

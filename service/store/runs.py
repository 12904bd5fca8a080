"""Training runs."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.models import Dataset, Run
from service.store.datasets import dialect_insert


def create_if_absent(session: Session, run: Run) -> Run | None:
    """Insert the run unless one has its name; None when one had (the unique index decides,
    as for datasets: concurrent creates of one name make one run and neither fails)."""
    values = {
        attr.key: getattr(run, attr.key)
        for attr in Run.__mapper__.column_attrs
        if getattr(run, attr.key) is not None  # id, created_at: the columns' defaults
    }
    stmt = (
        dialect_insert(session)(Run)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(Run.id)
    )
    new_id = session.execute(stmt).scalar()
    return None if new_id is None else session.get(Run, new_id)


def get_by_name(session: Session, name: str) -> Run | None:
    return session.scalar(select(Run).where(Run.name == name))


def id_for_token_hash(session: Session, token_hash: str) -> int | None:
    return session.scalar(select(Run.id).where(Run.token_hash == token_hash))


def get_by_id(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def list_with_dataset_names(session: Session) -> list[tuple[Run, str]]:
    stmt = select(Run, Dataset.name).join(Dataset, Dataset.id == Run.dataset_id).order_by(Run.name)
    return [(run, name) for run, name in session.execute(stmt)]


def bump_version(session: Session, run_id: int, max_step: int | None) -> int:
    """Increment the run's write version and raise its max step; returns the new version.

    The UPDATE takes the run's row lock (PostgreSQL) or the write lock (SQLite) until commit,
    so writers of one run commit in version order — what lets replicas pull deltas by version.
    """
    values: dict = {"version": Run.version + 1}
    if max_step is not None:
        # Portable max(coalesce(max_step, -1), :step) without GREATEST (absent in SQLite).
        values["max_step"] = _greatest(Run.max_step, max_step)
    stmt = update(Run).where(Run.id == run_id).values(**values).returning(Run.version)
    return int(session.execute(stmt).scalar_one())


def _greatest(column, value: int):
    from sqlalchemy import case, literal

    return case((column.is_(None), literal(value)), (column < value, literal(value)), else_=column)


def current_state(session: Session, run_id: int) -> tuple[int, int | None]:
    """(version, max_step) as committed now."""
    row = session.execute(select(Run.version, Run.max_step).where(Run.id == run_id)).one()
    return int(row[0]), row[1]

"""Datasets and problems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import orjson
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import Dataset, Problem
from service.store.bulk import chunks, fetch_columns

# Keeps IN lists and multi-row VALUES under every driver's bound-parameter limit.
CHUNK = 2000


def create_if_absent(session: Session, name: str, description: str | None) -> Dataset | None:
    """Insert the dataset unless one has this name; None when one had. The unique index
    decides, so two concurrent creates of one name make one dataset and neither fails
    (PostgreSQL's ON CONFLICT waits for the other transaction; SQLite serialises writers)."""
    stmt = (
        dialect_insert(session)(Dataset)
        .values(name=name, description=description)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(Dataset.id)
    )
    new_id = session.execute(stmt).scalar()
    return None if new_id is None else session.get(Dataset, new_id)


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT (with on_conflict_do_*): PostgreSQL's or SQLite's."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def get_by_name(session: Session, name: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.name == name))


def get_by_id(session: Session, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def list_with_counts(session: Session) -> list[tuple[Dataset, int]]:
    counts = (
        select(Problem.dataset_id, func.count().label("n")).group_by(Problem.dataset_id).subquery()
    )
    stmt = (
        select(Dataset, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.dataset_id == Dataset.id)
        .order_by(Dataset.name)
    )
    return [(dataset, int(n)) for dataset, n in session.execute(stmt).all()]


def problem_count(session: Session, dataset_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Problem).where(Problem.dataset_id == dataset_id)
        )
        or 0
    )


def upsert_problems(session: Session, dataset_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update problems by (dataset, external id). ``rows`` must have unique ids."""
    insert = dialect_insert(session)
    values = [
        {
            "dataset_id": dataset_id,
            "external_id": row["id"],
            "prompt": row["prompt"],
            "answer": row.get("answer"),
            "metadata": row.get("metadata"),
        }
        for row in rows
    ]
    # executemany of one cached statement; a multi-row VALUES would be recompiled each call.
    stmt = insert(cast(Table, Problem.__table__))
    stmt = stmt.on_conflict_do_update(
        index_elements=["dataset_id", "external_id"],
        set_={
            "prompt": stmt.excluded.prompt,
            "answer": stmt.excluded.answer,
            "metadata": stmt.excluded["metadata"],
        },
    )
    if values:
        session.execute(stmt, values)


def lock_for_append(session: Session, dataset_id: int) -> None:
    """Serialise problem uploads to one dataset until commit (PostgreSQL row lock; SQLite
    serialises writers anyway). New ids then become visible in id order, which is what lets
    indexes pull "problems with id > the last one seen" without missing a late commit."""
    session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())


def bump_content_version(session: Session, dataset_id: int) -> None:
    """Existing problems were overwritten: tell prompt caches (see domain/prompt_cache.py)."""
    session.execute(
        update(Dataset)
        .where(Dataset.id == dataset_id)
        .values(content_version=Dataset.content_version + 1)
    )


def content_version(session: Session, dataset_id: int) -> int:
    stmt = select(Dataset.content_version).where(Dataset.id == dataset_id)
    return int(session.scalar(stmt) or 0)


def get_problem(session: Session, dataset_id: int, external_id: str) -> Problem | None:
    return session.scalar(
        select(Problem).where(Problem.dataset_id == dataset_id, Problem.external_id == external_id)
    )


def ids_for_external(
    session: Session, dataset_id: int, external_ids: Sequence[str]
) -> dict[str, int]:
    """external id -> id for those that exist. On the ingest hot path (10,000 ids a request):
    one statement over the whole list, which the ORM's chunked IN lists cost 3-5x more than."""
    if not external_ids:
        return {}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT external_id, id FROM problems "
            "WHERE dataset_id = %s AND external_id = ANY(%b::text[])"
        )
        return dict(connection.exec_driver_sql(sql, (dataset_id, list(external_ids))).fetchall())
    # SQLite: CROSS JOIN pins json_each as the outer loop, so each id is one index probe.
    sql = (
        "SELECT p.external_id, p.id FROM json_each(?) AS j CROSS JOIN problems AS p "
        "WHERE p.dataset_id = ? AND p.external_id = j.value"
    )
    ids_json = orjson.dumps(list(external_ids)).decode()
    return dict(connection.exec_driver_sql(sql, (ids_json, dataset_id)).fetchall())


def problem_ids_after(session: Session, dataset_id: int, after_id: int) -> np.ndarray:
    """Sorted integer ids of the dataset's problems with id > after_id (bulk, into numpy)."""
    stmt = (
        select(Problem.id)
        .where(Problem.dataset_id == dataset_id, Problem.id > after_id)
        .order_by(Problem.id)
    )
    (ids,) = fetch_columns(session, stmt, [np.int64])
    return ids


def problem_texts_after(
    session: Session, dataset_id: int, after_id: int, limit: int
) -> dict[int, tuple[str, str, str | None]]:
    """The next `limit` problems' id -> (external_id, prompt, answer) in id order (a
    sequential read: what warms the prompt cache in bulk)."""
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    sql = (
        "SELECT id, external_id, prompt, answer FROM problems "
        f"WHERE dataset_id = {mark} AND id > {mark} ORDER BY id LIMIT {mark}"
    )
    cursor = session.connection().exec_driver_sql(sql, (dataset_id, after_id, limit)).cursor
    return {pid: (ext, prompt, answer) for pid, ext, prompt, answer in cursor.fetchall()}


def problems_by_ids(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str, str | None]]:
    """id -> (external_id, prompt, answer). On the batch hot path: plain driver SQL, since
    ORM row loading costs more than the indexed lookup itself."""
    out: dict[int, tuple[str, str, str | None]] = {}
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    connection = session.connection()
    for part in chunks(list(ids), CHUNK):
        sql = (
            "SELECT id, external_id, prompt, answer FROM problems WHERE id IN ("
            + ", ".join([mark] * len(part))
            + ")"
        )
        cursor = connection.exec_driver_sql(sql, tuple(int(i) for i in part)).cursor
        for pid, ext, prompt, answer in cursor.fetchall():
            out[pid] = (ext, prompt, answer)
    return out

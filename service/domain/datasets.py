"""Dataset and problem use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from service.db import UnitOfWork
from service.domain.views import DatasetOut, ProblemOut, ProblemsUpserted
from service.errors import Conflict, NotFound
from service.models import Dataset, Problem
from service.store import datasets as store


def dataset_view(dataset: Dataset, problem_count: int) -> DatasetOut:
    return DatasetOut(
        name=dataset.name,
        description=dataset.description,
        problem_count=problem_count,
        created_at=dataset.created_at,
    )


def create(uow: UnitOfWork, name: str, description: str | None) -> DatasetOut:
    if store.get_by_name(uow.session, name) is not None:
        raise Conflict(f"dataset {name!r} already exists")
    try:
        dataset = store.create(uow.session, name, description)
    except IntegrityError as exc:  # lost a race; the request scope rolls back
        raise Conflict(f"dataset {name!r} already exists") from exc
    return dataset_view(dataset, 0)


def require(uow: UnitOfWork, name: str) -> Dataset:
    dataset = store.get_by_name(uow.session, name)
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    return dataset


def get(uow: UnitOfWork, name: str) -> DatasetOut:
    dataset = require(uow, name)
    return dataset_view(dataset, store.problem_count(uow.session, dataset.id))


def list_all(uow: UnitOfWork) -> list[DatasetOut]:
    return [dataset_view(d, n) for d, n in store.list_with_counts(uow.session)]


def upsert_problems(
    uow: UnitOfWork, name: str, problems: list[dict[str, Any]], on_new: Callable[..., None]
) -> ProblemsUpserted:
    """Upsert by id; the last occurrence of a repeated id wins. ``on_new(dataset_id,
    changed=...)`` runs after commit so indexes pick the new problems up and, when existing
    problems were overwritten, cached prompts are dropped."""
    dataset = require(uow, name)
    store.lock_for_append(uow.session, dataset.id)
    by_id = {p["id"]: p for p in problems}
    existing = store.ids_for_external(uow.session, dataset.id, list(by_id))
    store.upsert_problems(uow.session, dataset.id, list(by_id.values()))
    if existing:
        store.bump_content_version(uow.session, dataset.id)
    uow.after_commit(lambda: on_new(dataset.id, changed=bool(existing)))
    return ProblemsUpserted(inserted=len(by_id) - len(existing), updated=len(existing))


def get_problem(uow: UnitOfWork, name: str, problem_id: str) -> ProblemOut:
    dataset = require(uow, name)
    problem = store.get_problem(uow.session, dataset.id, problem_id)
    if problem is None:
        raise NotFound(f"problem {problem_id!r} not found in dataset {name!r}")
    return problem_view(problem)


def problem_view(problem: Problem) -> ProblemOut:
    return ProblemOut(
        id=problem.external_id,
        prompt=problem.prompt,
        answer=problem.answer,
        metadata=problem.meta,
    )

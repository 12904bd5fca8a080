"""Dataset and problem use cases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from service.db import UnitOfWork
from service.domain.views import DatasetOut, Obtained, ProblemOut, ProblemsUpserted
from service.errors import Conflict, InvalidItems, NotFound
from service.models import Dataset, Problem
from service.store import datasets as store


def dataset_view(dataset: Dataset, problem_count: int) -> DatasetOut:
    return DatasetOut(
        name=dataset.name,
        description=dataset.description,
        problem_count=problem_count,
        created_at=dataset.created_at,
    )


def create(uow: UnitOfWork, name: str, description: str | None) -> Obtained[DatasetOut]:
    """Get or create: the new dataset, or the existing one when it has this description;
    Conflict naming the description otherwise."""
    dataset = store.create_if_absent(uow.session, name, description)
    if dataset is not None:
        return Obtained(dataset_view(dataset, 0), created=True)
    existing = require(uow, name)
    if existing.description != description:
        raise Conflict(
            f"dataset {name!r} exists with description {shown(existing.description)}, "
            f"not {shown(description)}"
        )
    count = store.problem_count(uow.session, existing.id)
    return Obtained(dataset_view(existing, count), created=False)


def shown(value: object, limit: int = 80) -> str:
    """A setting as a 409 quotes it: null, a number, or a quoted (and shortened) string."""
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


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
    """Upsert by id (an id given twice in one upload is a 422 listing the ids: which copy
    was meant cannot be told). ``on_new(dataset_id, changed=...)`` runs after commit so
    indexes pick the new problems up and, when existing problems were overwritten, cached
    prompts are dropped."""
    dataset = require(uow, name)
    check_unique_ids(p["id"] for p in problems)
    store.lock_for_append(uow.session, dataset.id)
    ids = [p["id"] for p in problems]
    existing = store.ids_for_external(uow.session, dataset.id, ids)
    store.upsert_problems(uow.session, dataset.id, problems)
    if existing:
        store.bump_content_version(uow.session, dataset.id)
    uow.after_commit(lambda: on_new(dataset.id, changed=bool(existing)))
    return ProblemsUpserted(inserted=len(ids) - len(existing), updated=len(existing))


def check_unique_ids(ids: Iterable[str], field: str = "problems") -> None:
    """422 on `field` listing the problem ids given more than once in one upload (which copy
    was meant cannot be told; nothing is applied). Problems and priors uploads both use it."""
    counts = Counter(ids)
    repeated = sorted(pid for pid, n in counts.items() if n > 1)
    if repeated:
        raise InvalidItems(
            field,
            f"{len(repeated)} problem id(s) given more than once in one upload; nothing was "
            "applied",
            items=repeated[:1000],
        )


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

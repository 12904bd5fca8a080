"""Per-problem priors of a run: an uploaded profile, or another run's current estimates
(curriculum/priors.py says what a prior is and how the estimators use it).

Every write bumps the run's priors_version in the same transaction; after the commit this
process's index reloads the run's priors, other replicas on their next sync (they compare
priors_version), and a restarted service reads them when it builds the index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from service.curriculum.priors import from_estimates, profile_counts
from service.db import UnitOfWork
from service.domain import runs
from service.domain.datasets import check_unique_ids
from service.domain.index_registry import IndexRegistry
from service.domain.views import PriorsSet
from service.errors import Conflict, InvalidItems
from service.models import Run
from service.store import datasets as dataset_store
from service.store import priors as store

OnCommitted = Callable[[int], None]


def unknown_problem_ids(unknown: list[str]) -> InvalidItems:
    """Priors of problems the run's dataset does not have: none applied (the first 1,000)."""
    return InvalidItems(
        "items",
        f"{len(unknown)} unknown problem id(s) for this run's dataset; nothing was applied",
        items=unknown[:1000],
    )


def upload(
    uow: UnitOfWork,
    run: Run,
    items: Sequence[Mapping[str, Any]],
    max_pseudo_attempts: float | None,
    replace: bool,
    on_committed: OnCommitted,
) -> PriorsSet:
    """Set each named problem's prior to (pseudo_attempts, pseudo_attempts * pass_rate),
    pseudo_attempts capped at max_pseudo_attempts; with `replace`, the others lose theirs."""
    check_unique_ids((item["problem_id"] for item in items), "items")
    external = [item["problem_id"] for item in items]
    mapping = dataset_store.ids_for_external(uow.session, run.dataset_id, sorted(set(external)))
    unknown = sorted(set(external) - mapping.keys())
    if unknown:
        raise unknown_problem_ids(unknown)
    ids = np.fromiter((mapping[pid] for pid in external), dtype=np.int64, count=len(external))
    attempts, successes = profile_counts(
        np.array([item["pass_rate"] for item in items], dtype=np.float64),
        np.array([item["pseudo_attempts"] for item in items], dtype=np.float64),
        max_pseudo_attempts,
    )
    return _write(uow, run, ids, attempts, successes, replace, on_committed)


def copy(
    uow: UnitOfWork,
    run: Run,
    source_name: str,
    max_pseudo_attempts: float,
    replace: bool,
    registry: IndexRegistry,
    on_committed: OnCommitted,
) -> PriorsSet:
    """Start the run from another run's current estimates: each problem the source has
    evidence for (its own counts plus its prior, as its estimator reads them) gets the
    source's pass rate at min(its evidence, max_pseudo_attempts) pseudo-attempts."""
    source = runs.require(uow, source_name)
    if source.id == run.id:
        raise Conflict(f"run {run.name!r} cannot take priors from itself")
    if source.dataset_id != run.dataset_id:
        raise Conflict(
            f"run {source_name!r} is on another dataset than run {run.name!r}: priors are "
            "copied problem by problem within one dataset"
        )
    entry = registry.get(uow.session, source)
    with entry.lock:
        arrays = entry.index.arrays()
        ids = arrays.ids.copy()
        attempts, successes = from_estimates(arrays.attempts, arrays.successes, max_pseudo_attempts)
    keep = attempts > 0
    return _write(uow, run, ids[keep], attempts[keep], successes[keep], replace, on_committed)


def _write(
    uow: UnitOfWork,
    run: Run,
    ids: np.ndarray,
    attempts: np.ndarray,
    successes: np.ndarray,
    replace: bool,
    on_committed: OnCommitted,
) -> PriorsSet:
    session = uow.session
    store.bump_version(session, run.id)  # first: the run's row lock orders prior writers
    if replace:
        store.clear(session, run.id)
    store.upsert(session, run.id, ids, attempts, successes)
    total = store.count(session, run.id)
    uow.after_commit(lambda: on_committed(run.id))
    return PriorsSet(updated=len(ids), problems_with_prior=total)


def of_problems(uow: UnitOfWork, run: Run, ids: list[int]) -> list[tuple[float, float]]:
    """Each problem's prior pseudo-counts, (0, 0) where it has none (for the views)."""
    # A run that never had a prior (priors_version 0) is not asked: the common case.
    found = store.of_problems(uow.session, run.id, ids) if ids and run.priors_version else {}
    return [found.get(pid, (0.0, 0.0)) for pid in ids]

"""Run use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from service.auth import digest, new_run_token
from service.db import UnitOfWork
from service.errors import Conflict, NotFound
from service.models import Run
from service.store import datasets as dataset_store
from service.store import runs as store


def run_view(run: Run, dataset_name: str) -> dict[str, Any]:
    return {
        "name": run.name,
        "dataset": dataset_name,
        "kernel": {"alpha": run.kernel_alpha, "beta": run.kernel_beta},
        "estimator": {
            "kind": run.estimator_kind,
            "prior_alpha": run.prior_alpha,
            "prior_beta": run.prior_beta,
            "half_life_steps": run.half_life_steps,
            "window": run.estimator_window,
        },
        "step": run.max_step,
        "created_at": run.created_at,
    }


def create(
    uow: UnitOfWork, spec: dict[str, Any], *, with_token: bool = False
) -> tuple[Run, dict[str, Any]]:
    """Create a run; with auth on, its token is returned here once and stored hashed."""
    dataset = dataset_store.get_by_name(uow.session, spec["dataset"])
    if dataset is None:
        raise NotFound(f"dataset {spec['dataset']!r} not found")
    if store.get_by_name(uow.session, spec["name"]) is not None:
        raise Conflict(f"run {spec['name']!r} already exists")
    kernel, estimator = spec["kernel"], spec["estimator"]
    run = Run(
        name=spec["name"],
        dataset_id=dataset.id,
        kernel_alpha=kernel["alpha"],
        kernel_beta=kernel["beta"],
        estimator_kind=estimator["kind"],
        prior_alpha=estimator["prior_alpha"],
        prior_beta=estimator["prior_beta"],
        half_life_steps=estimator["half_life_steps"],
        estimator_window=estimator["window"],
        version=0,
        max_step=None,
    )
    token = new_run_token() if with_token else None
    if token is not None:
        run.token_hash = digest(token)
    try:
        store.create(uow.session, run)
    except IntegrityError as exc:
        raise Conflict(f"run {spec['name']!r} already exists") from exc
    view = run_view(run, dataset.name)
    view["token"] = token
    return run, view


def require(uow: UnitOfWork, name: str) -> Run:
    run = store.get_by_name(uow.session, name)
    if run is None:
        raise NotFound(f"run {name!r} not found")
    return run


@dataclass(frozen=True)
class RunRef:
    """A run's immutable settings: all the batch hot path needs, cached per process (runs
    are never renamed, re-pointed or deleted, so a cached ref cannot go stale)."""

    id: int
    name: str
    dataset_id: int
    kernel_alpha: float
    kernel_beta: float
    estimator_kind: str
    prior_alpha: float
    prior_beta: float
    half_life_steps: float | None
    estimator_window: str


def require_ref(uow: UnitOfWork, name: str, cache: dict[str, RunRef]) -> RunRef:
    """Like require(), without a database round trip once the run has been seen."""
    ref = cache.get(name)
    if ref is None:
        run = require(uow, name)
        ref = RunRef(
            id=run.id,
            name=run.name,
            dataset_id=run.dataset_id,
            kernel_alpha=run.kernel_alpha,
            kernel_beta=run.kernel_beta,
            estimator_kind=run.estimator_kind,
            prior_alpha=run.prior_alpha,
            prior_beta=run.prior_beta,
            half_life_steps=run.half_life_steps,
            estimator_window=run.estimator_window,
        )
        cache[name] = ref
    return ref


def get(uow: UnitOfWork, name: str) -> dict[str, Any]:
    run = require(uow, name)
    dataset = dataset_store.get_by_id(uow.session, run.dataset_id)
    return run_view(run, dataset.name if dataset else "")


def list_all(uow: UnitOfWork) -> list[dict[str, Any]]:
    return [run_view(run, ds) for run, ds in store.list_with_dataset_names(uow.session)]

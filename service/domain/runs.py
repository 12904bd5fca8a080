"""Run use cases."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from service.auth import digest, new_run_token
from service.curriculum.estimators import EstimatorConfig
from service.curriculum.kernels import KernelConfig
from service.db import UnitOfWork
from service.domain.views import EstimatorOut, KernelOut, RunOut
from service.errors import Conflict, NotFound
from service.models import Run
from service.store import datasets as dataset_store
from service.store import runs as store


def run_view(run: Run, dataset_name: str, token: str | None = None) -> RunOut:
    return RunOut(
        name=run.name,
        dataset=dataset_name,
        # The settings objects' field names are the API's (alpha, beta; kind, ..., window).
        kernel=KernelOut.model_validate(run.kernel, from_attributes=True),
        estimator=EstimatorOut.model_validate(run.estimator, from_attributes=True),
        step=run.max_step,
        created_at=run.created_at,
        token=token,
    )


def create(
    uow: UnitOfWork,
    name: str,
    dataset_name: str,
    kernel: KernelConfig,
    estimator: EstimatorConfig,
    *,
    with_token: bool = False,
) -> tuple[Run, RunOut]:
    """Create a run; with auth on, its token is returned here once and stored hashed."""
    dataset = dataset_store.get_by_name(uow.session, dataset_name)
    if dataset is None:
        raise NotFound(f"dataset {dataset_name!r} not found")
    if store.get_by_name(uow.session, name) is not None:
        raise Conflict(f"run {name!r} already exists")
    run = Run(
        name=name,
        dataset_id=dataset.id,
        kernel=kernel,
        estimator=estimator,
        version=0,
        max_step=None,
    )
    token = new_run_token() if with_token else None
    if token is not None:
        run.token_hash = digest(token)
    try:
        store.create(uow.session, run)
    except IntegrityError as exc:
        raise Conflict(f"run {name!r} already exists") from exc
    return run, run_view(run, dataset.name, token)


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
    kernel: KernelConfig
    estimator: EstimatorConfig


def require_ref(uow: UnitOfWork, name: str, cache: dict[str, RunRef]) -> RunRef:
    """Like require(), without a database round trip once the run has been seen."""
    ref = cache.get(name)
    if ref is None:
        run = require(uow, name)
        ref = RunRef(run.id, run.name, run.dataset_id, run.kernel, run.estimator)
        cache[name] = ref
    return ref


def get(uow: UnitOfWork, name: str) -> RunOut:
    run = require(uow, name)
    dataset = dataset_store.get_by_id(uow.session, run.dataset_id)
    return run_view(run, dataset.name if dataset else "")


def list_all(uow: UnitOfWork) -> list[RunOut]:
    return [run_view(run, ds) for run, ds in store.list_with_dataset_names(uow.session)]

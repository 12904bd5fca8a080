"""Run use cases."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth import digest, new_run_token
from service.curriculum.estimators import EstimatorConfig
from service.curriculum.kernels import KernelConfig
from service.db import UnitOfWork
from service.domain.datasets import shown
from service.domain.views import EstimatorOut, KernelOut, Obtained, RunOut
from service.errors import Conflict, NotFound
from service.models import Run
from service.store import datasets as dataset_store
from service.store import runs as store


def run_view(run: Run, dataset_name: str, token: str | None = None) -> RunOut:
    return RunOut(
        name=run.name,
        dataset=dataset_name,
        kernel=_kernel_out(run.kernel),
        estimator=_estimator_out(run.estimator),
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
) -> Obtained[RunOut]:
    """Get or create a run. Created: with auth on, its token is returned here, once, and
    stored hashed. Found with the same dataset and settings: returned without a token (it
    was shown to whoever created the run). Found with other settings: Conflict naming them."""
    dataset = dataset_store.get_by_name(uow.session, dataset_name)
    if dataset is None:
        raise NotFound(f"dataset {dataset_name!r} not found")
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
    created = store.create_if_absent(uow.session, run)
    if created is not None:
        return Obtained(run_view(created, dataset.name, token), created=True)
    existing = require(uow, name)
    existing_dataset = dataset_store.get_by_id(uow.session, existing.dataset_id)
    view = run_view(existing, existing_dataset.name if existing_dataset else "")
    differences = settings_differences(view, dataset.name, kernel, estimator)
    if differences:
        raise Conflict(f"run {name!r} exists with {'; '.join(differences)}")
    return Obtained(view, created=False)


def settings_differences(
    existing: RunOut, dataset: str, kernel: KernelConfig, estimator: EstimatorConfig
) -> list[str]:
    """What a create asked for that the existing run does not have, as "field old, not new"
    (fields as the API names them: dataset, kernel.alpha, estimator.window, ...)."""
    have = _settings(existing.dataset, existing.kernel, existing.estimator)
    want = _settings(dataset, _kernel_out(kernel), _estimator_out(estimator))
    return [
        f"{key} {shown(have[key])}, not {shown(value)}"
        for key, value in want.items()
        if have[key] != value
    ]


def _settings(dataset: str, kernel: KernelOut, estimator: EstimatorOut) -> dict[str, object]:
    settings: dict[str, object] = {"dataset": dataset}
    settings.update({f"kernel.{k}": v for k, v in kernel.model_dump().items()})
    settings.update({f"estimator.{k}": v for k, v in estimator.model_dump().items()})
    return settings


def _kernel_out(kernel: KernelConfig) -> KernelOut:
    # The settings objects' field names are the API's (alpha, beta; kind, ..., window).
    return KernelOut.model_validate(kernel, from_attributes=True)


def _estimator_out(estimator: EstimatorConfig) -> EstimatorOut:
    return EstimatorOut.model_validate(estimator, from_attributes=True)


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

"""Everything a request needs, built once per app by create_app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.db import UnitOfWork
from service.domain import runs
from service.domain.activity import RequestActivity
from service.domain.history import HistoryRecorder
from service.domain.index_registry import IndexRegistry
from service.domain.prompt_cache import PromptCache
from service.domain.runs import RunRef
from service.domain.sampler import Sampler
from service.metrics import Metrics
from service.models import Run
from service.settings import Settings

log = logging.getLogger("paced")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    registry: IndexRegistry
    metrics: Metrics
    prompts: PromptCache
    # Hot-path lookups, immutable once known: token digest -> run id, run name -> RunRef.
    token_cache: dict[str, int] = field(default_factory=dict)
    run_refs: dict[str, RunRef] = field(default_factory=dict)
    # Requests in flight, told by the metrics middleware; background warm-up waits for quiet.
    activity: RequestActivity = field(default_factory=RequestActivity)
    history: HistoryRecorder = field(init=False)
    sampler: Sampler = field(init=False)

    def __post_init__(self) -> None:
        self.history = HistoryRecorder(
            self.registry,
            self.transaction,
            max_points=self.settings.history_max_points,
            min_interval_s=self.settings.history_min_interval_s,
        )
        self.sampler = Sampler(
            self.registry,
            self.prompts,
            self.transaction,
            self.run_refs,
            run_in_threadpool,
            prefill=self.settings.prompt_prefill,
            activity=self.activity,
        )

    def outcomes_committed(
        self,
        run_id: int,
        version: int | None = None,
        rows: list[np.ndarray] | None = None,
        step: int | None = None,
    ) -> None:
        """After an outcomes request commits: this process's index applies the merged rows,
        and the run's history records a snapshot when one is due (``step``: the run's step
        after that commit)."""
        self.registry.refresh(run_id, version, rows)
        try:
            self.history.record(run_id, step)
        except Exception:  # the outcomes are committed: a lost snapshot must not fail them
            log.exception("could not record a history snapshot for run %s", run_id)

    def priors_committed(self, run_id: int) -> None:
        """After a priors write commits: this process's index reloads the run's priors."""
        self.registry.refresh(run_id)

    def problems_changed(self, dataset_id: int, *, changed: bool) -> None:
        """After an upsert commits: indexes learn new problems; overwritten texts go."""
        self.registry.invalidate_dataset(dataset_id)
        if changed:
            self.prompts.invalidate(dataset_id)

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """The request scope: commit when the block succeeds, roll back when it raises."""
        uow = UnitOfWork(self.session_factory())
        try:
            yield uow
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()

    def use(
        self, use_case: Callable[Concatenate[UnitOfWork, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A use case in the request scope: what a route does between reading its input and
        sending the result."""
        with self.transaction() as uow:
            return use_case(uow, *args, **kwargs)

    def on_run(
        self,
        run: str,
        use_case: Callable[Concatenate[UnitOfWork, Run, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A use case on the named run (404 when there is none), in the request scope."""
        with self.transaction() as uow:
            return use_case(uow, runs.require(uow, run), *args, **kwargs)

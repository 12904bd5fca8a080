"""The "predicted" estimator of a run: its drift model (curriculum/drift.py) fed from the
outcome log, and the predictions it gives the run's index.

The model needs each outcome with its step, which problem_stats no longer has, so it reads
the log: all of it when the index is built, the requests after the version it has seen on
every sync. An outcome posted without a step meant the run's step at the time (the largest
step given so far, docs/architecture.md): that is what it is observed at. Outcomes with no
graded attempt (errored only) are not observed. After every change the predictions of every
problem are set again (O(N) numpy): the fit moves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session

from service.curriculum.drift import DriftModel
from service.curriculum.index import SamplingIndex
from service.db import UnitOfWork
from service.models import Run
from service.store import outcome_log

if TYPE_CHECKING:  # the registry holds a Drift per predicted run: it imports this module
    from service.domain.index_registry import IndexRegistry

LogRows = dict[str, np.ndarray]


@dataclass
class Drift:
    model: DriftModel
    version: int = 0  # the log is observed up to this run version
    step: int = -1  # the largest step given up to it (what a missing step stands for)


def read_since(session: Session, run_id: int, drift: Drift | None) -> LogRows:
    """The log the model has not seen (all of it without a model yet)."""
    return outcome_log.read(session, run_id, 0 if drift is None else drift.version)


def observe(drift: Drift, index: SamplingIndex, log: LogRows, up_to: int) -> None:
    """Fold the log's requests up to run version `up_to` in (later ones: the next sync)."""
    keep = (log["version"] > drift.version) & (log["version"] <= up_to)
    versions, steps = log["version"][keep], log["steps"][keep]
    if versions.size:
        unique, inverse = np.unique(versions, return_inverse=True)
        given = np.full(len(unique), drift.step, dtype=np.int64)
        np.maximum.at(given, inverse, steps)  # -1 (no step) never raises it
        running = np.maximum.accumulate(given)
        steps = np.where(steps >= 0, steps, np.maximum(running[inverse], 0))
        drift.step = int(running[-1])
        slots = index.slots_of(log["problem_ids"][keep])
        attempts, successes = log["attempts"][keep], log["successes"][keep]
        graded = (slots >= 0) & (attempts > 0)
        drift.model.grow(index.n_problems)
        drift.model.observe(slots[graded], attempts[graded], successes[graded], steps[graded])
    drift.version = max(drift.version, up_to)


def rates(drift: Drift, n_problems: int, now: int | None) -> np.ndarray:
    """The model's pass rate of every problem for the student at step `now` (the run's)."""
    drift.model.grow(n_problems)
    return drift.model.predicted_pass_rates(0 if now is None else int(now))


def predict(drift: Drift, index: SamplingIndex, now: int | None) -> None:
    """rates() into the index (the caller holds what guards it)."""
    index.set_predictions(rates(drift, index.n_problems, now))


def from_index(
    uow: UnitOfWork, run: Run, registry: IndexRegistry | None, ids: list[int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """A predicted run's (pass rates, weights) of these problems, for the views that read the
    database: they come from its index, where the drift model lives (NaN for problems the
    index does not know yet). None for the other estimators."""
    if registry is None or run.estimator.kind != "predicted" or not ids:
        return None
    entry = registry.get(uow.session, run)
    rates, weights = np.full(len(ids), np.nan), np.full(len(ids), np.nan)
    with entry.lock:
        slots = entry.index.slots_of(np.asarray(ids, dtype=np.int64))
        known = slots >= 0
        rates[known] = entry.index.pass_rates_of(slots[known])
        weights[known] = entry.index.arrays().weights[slots[known]]
    return rates, weights

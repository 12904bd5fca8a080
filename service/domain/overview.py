"""Across runs: the runs overview, run-vs-run comparison and one problem's outcome history.

Whatever the number of runs, the overview is one statement (each run's newest history
snapshot); a comparison reads the runs' in-memory indexes (O(N) numpy per run, as the
single-run overview does) and their histories in one statement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from service.db import UnitOfWork
from service.domain import curriculum
from service.domain import runs as run_service
from service.domain.datasets import problem_view
from service.domain.history import history_point, live_point, with_live_point
from service.domain.index_registry import IndexRegistry
from service.domain.previews import previews
from service.domain.reports import (
    ComparedRun,
    Comparison,
    Difference,
    HistoryPoint,
    ProblemHistory,
    RunSummary,
    StepOutcomes,
)
from service.domain.views import Difficulty
from service.errors import InvalidQuery, NotFound
from service.models import Run
from service.store import datasets as dataset_store
from service.store import overview as store
from service.store.outcome_log import NO_STEP

MAX_COMPARED_RUNS = 8  # each compared run's index is held in memory (~40 MB at 1e6 problems)
# Outcomes scanned for one problem's history before giving up on older ones (~0.1 s of
# numpy per million; see store.overview.outcomes_of_problem).
PROBLEM_HISTORY_SCAN = 5_000_000


# ---- overview ---------------------------------------------------------------------------


def runs_summary(
    uow: UnitOfWork,
    registry: IndexRegistry,
    dataset: str | None = None,
    name_glob: str | None = None,
    rollouts: bool = False,
) -> list[RunSummary]:
    """Each run with its newest snapshot (``latest`` is None before its first outcomes),
    live from the run's index where this process has one loaded (the stored one otherwise:
    loading every run's index for a listing would cost O(all problems))."""
    summaries = []
    listed = store.runs_with_latest_snapshot(uow.session, dataset, name_glob)
    totals = store.rollouts_of_runs(uow.session, [r.id for r, _, _ in listed]) if rollouts else {}
    for run, dataset_name, snapshot in listed:
        latest = history_point(snapshot) if snapshot is not None else None
        entry = registry.loaded(run.id) if run.version else None
        if entry is not None:
            with entry.lock:
                live = live_point(run, entry.index)
            latest = with_live_point([latest] if latest else [], live)[-1]
        graded, errored = totals.get(run.id, (0, 0)) if rollouts else (None, None)
        summaries.append(
            RunSummary(
                run=run_service.run_view(run, dataset_name),
                latest=latest,
                rollouts=graded,
                errored_rollouts=errored,
            )
        )
    return summaries


# ---- comparison -------------------------------------------------------------------------


def parse_run_list(field: str, value: str, *, at_least: int, at_most: int) -> list[str]:
    """Comma-separated run names -> list; 422 on the field for empty, repeated or too many."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if len(set(names)) != len(names):
        raise InvalidQuery(field, "each run may be named only once")
    if not at_least <= len(names) <= at_most:
        raise InvalidQuery(field, f"name {at_least} to {at_most} runs, comma-separated")
    return names


def check_one_dataset(runs: list[tuple[str, str]]) -> None:
    """(run name, dataset name) of the compared runs: 422 on `runs` unless one dataset."""
    if len({dataset for _, dataset in runs}) > 1:
        where = ", ".join(f"{name}: {dataset}" for name, dataset in runs)
        raise InvalidQuery(
            "runs", f"runs are on different datasets ({where}); compare runs of one dataset"
        )


def check_pair_among(pair: list[str], names: list[str]) -> None:
    if any(name not in names for name in pair):
        raise InvalidQuery("pair", "both runs of the pair must be among the compared runs")


def _require_runs(uow: UnitOfWork, names: list[str]) -> list[tuple[Run, str]]:
    found = {run.name: (run, ds) for run, ds in store.runs_by_names(uow.session, names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise NotFound(f"runs not found: {', '.join(repr(n) for n in missing)}")
    return [found[name] for name in names]


class Gap(NamedTuple):
    """A problem (by internal id) two runs disagree on; Difference once its text is read."""

    id: int
    pass_rates: list[float]
    attempts: list[float]
    difference: float


def largest_differences(a: dict[str, np.ndarray], b: dict[str, np.ndarray], top: int) -> list[Gap]:
    """Problems seen by both runs whose pass rates (k/n) differ most, largest |pa - pb|
    first (ties by problem id); problems with equal pass rates are left out.

    ``a`` and ``b`` hold each index's sorted ``ids``, ``attempts`` and ``successes``.
    """
    ids_a, ids_b = a["ids"], b["ids"]
    if len(ids_a) == len(ids_b) and np.array_equal(ids_a, ids_b):
        slots_a = slots_b = np.arange(len(ids_a))  # the usual case: same problems, same order
    else:
        _, slots_a, slots_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    att_a, att_b = a["attempts"][slots_a], b["attempts"][slots_b]
    both = (att_a > 0) & (att_b > 0)
    slots_a, slots_b = slots_a[both], slots_b[both]
    p_a = np.clip(a["successes"][slots_a] / att_a[both], 0.0, 1.0)
    p_b = np.clip(b["successes"][slots_b] / att_b[both], 0.0, 1.0)
    gap = np.abs(p_a - p_b)
    candidates = np.flatnonzero(gap > 0)
    if top <= 0 or len(candidates) == 0:
        return []
    if len(candidates) > top:
        candidates = candidates[np.argpartition(-gap[candidates], top - 1)[:top]]
    ids = ids_a[slots_a[candidates]]
    chosen = candidates[np.lexsort((ids, -gap[candidates]))]
    return [
        Gap(
            id=int(ids_a[slots_a[i]]),
            pass_rates=[float(p_a[i]), float(p_b[i])],
            attempts=[float(a["attempts"][slots_a[i]]), float(b["attempts"][slots_b[i]])],
            difference=float(p_a[i] - p_b[i]),
        )
        for i in chosen
    ]


def compare(
    uow: UnitOfWork,
    registry: IndexRegistry,
    names: list[str],
    pair: list[str] | None,
    bins: int,
    top: int,
) -> Comparison:
    """Several runs of one dataset side by side, and the problems two of them disagree on."""
    runs = _require_runs(uow, names)
    check_one_dataset([(run.name, ds) for run, ds in runs])
    pair = pair or names[:2]
    check_pair_among(pair, names)
    histories: dict[int, list[HistoryPoint]] = {run.id: [] for run, _ in runs}
    for row in store.history_of_runs(uow.session, list(histories)):
        histories[row.run_id].append(history_point(row))
    items, arrays = [], {}
    for run, dataset_name in runs:
        entry = registry.get(uow.session, run)
        with entry.lock:
            index = entry.index
            current = index.arrays()
            report, mean_p = index.difficulty(bins), index.summary()["mean_pass_rate"]
            if run.name in pair:  # copies: the index changes once the lock is released
                arrays[run.name] = {
                    "ids": current.ids.copy(),
                    "attempts": current.attempts.copy(),
                    "successes": current.successes.copy(),
                }
        items.append(
            ComparedRun(
                run=run_service.run_view(run, dataset_name),
                difficulty=Difficulty.model_validate(report),
                mean_pass_rate=mean_p,
                history=histories[run.id],
            )
        )
    gaps = largest_differences(arrays[pair[0]], arrays[pair[1]], top)
    shown = previews(uow, [gap.id for gap in gaps])
    differences = [
        Difference(
            **shown[gap.id],
            pass_rates=gap.pass_rates,
            attempts=gap.attempts,
            difference=gap.difference,
        )
        for gap in gaps
    ]
    return Comparison(dataset=runs[0][1], runs=items, pair=pair, differences=differences)


# ---- one problem ------------------------------------------------------------------------


def problem_history(uow: UnitOfWork, run: Run, problem_id: str) -> ProblemHistory:
    """The problem's text, its current stats, and its outcomes aggregated per step."""
    stats = curriculum.problem_stats(uow, run, problem_id)  # 404 for an unknown problem
    problem = dataset_store.get_problem(uow.session, run.dataset_id, problem_id)
    if problem is None:  # problem_stats found it: only a concurrent delete could get here
        raise NotFound(f"problem {problem_id!r} not found")
    outcomes, complete = store.outcomes_of_problem(
        uow.session, run.id, problem.id, PROBLEM_HISTORY_SCAN
    )
    steps = []
    for step in np.unique(outcomes["steps"]):
        at = outcomes["steps"] == step
        attempts, successes = (
            int(outcomes["attempts"][at].sum()),
            int(outcomes["successes"][at].sum()),
        )
        steps.append(
            StepOutcomes(
                step=None if step == NO_STEP else int(step),
                attempts=attempts,
                successes=successes,
                pass_rate=successes / attempts,
                outcomes=int(at.sum()),
                last_accepted_at=datetime.fromtimestamp(
                    float(outcomes["created_at"][at].max()), UTC
                ),
            )
        )
    return ProblemHistory(
        problem=problem_view(problem), stats=stats, steps=steps, complete=complete
    )

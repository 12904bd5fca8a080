"""Run history (difficulty snapshots over training steps) and the dashboard's run overview.

Snapshots are taken after this process commits outcomes, from the run's in-memory index:
O(1), from the running totals the index keeps (an O(N) pass cost 14.5 ms at N=1e6, on
every post that moves the step), done only when the run's step has moved or
``min_interval_s`` has passed since the last snapshot of the run — never per request at
O(N) cost. Each run keeps at most ``max_points`` rows: when it overflows, every other row
of the older half is dropped, so recent steps stay dense and old ones get coarser.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import SimpleNamespace
from typing import Any, TypedDict

import numpy as np
from sqlalchemy import Row

from service.curriculum.estimators import ZONE_FRONTIER, ZONE_MASTERED, zones
from service.curriculum.index import IndexArrays, SamplingIndex
from service.curriculum.kernels import kernel_curve
from service.db import UnitOfWork
from service.domain import runs as run_service
from service.domain.estimation import estimator_for
from service.domain.index_registry import IndexRegistry
from service.domain.previews import Preview, previews
from service.domain.reports import HistoryPoint, KernelCurve, Overview, ProblemSummary
from service.domain.views import Difficulty, Zones
from service.models import Run, RunHistory, utcnow
from service.store import datasets as dataset_store
from service.store import history as store
from service.store import runs as run_store

log = logging.getLogger("paced.history")


# ---- reading the index ------------------------------------------------------------------


def snapshot(index: SamplingIndex) -> store.Snapshot:
    """Zone counts, mean pass rate, mean weight and effective problems right now (O(1):
    the index keeps running totals)."""
    summary = index.summary()
    return store.Snapshot(
        **summary["zones"],
        mean_pass_rate=summary["mean_pass_rate"],
        mean_weight=float(summary["mean_weight"]),
        effective_problems=float(summary["effective_problems"]),
        created_at=utcnow(),
    )


# ---- bounding ---------------------------------------------------------------------------


def ids_to_thin(ids_in_step_order: list[int], max_points: int) -> list[int]:
    """Rows to delete so a run keeps at most max_points: every other row of the older half.

    The first row (the start of the run) and the newer half always stay.
    """
    n = len(ids_in_step_order)
    if n <= max_points:
        return []
    return ids_in_step_order[1 : n // 2 : 2]


# ---- recording --------------------------------------------------------------------------


Transaction = Callable[[], AbstractContextManager[UnitOfWork]]


class HistoryRecorder:
    """Records a run's history snapshot after its outcomes commit (AppContext.outcomes_committed
    calls record); skipped unless the step moved or the interval passed."""

    def __init__(
        self,
        registry: IndexRegistry,
        transaction: Transaction,
        *,
        max_points: int,
        min_interval_s: float,
    ) -> None:
        self._registry = registry
        self._transaction = transaction
        self.max_points = max_points
        self.min_interval_s = min_interval_s
        self._last: dict[int, tuple[int, float]] = {}  # run id -> (step, monotonic time)
        self._run_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # A throttled snapshot is written later (the trailing edge), so the stored history
        # ends at the run's last acknowledged state within min_interval_s, even when the
        # posts stop. Readers never wait for it: they see a live last point (with_live_point).
        self._trailing: dict[int, threading.Timer] = {}

    def record(self, run_id: int, step: int | None = None, *, force: bool = False) -> bool:
        """Record a snapshot if due (or forced); returns whether one was written.

        ``step``: the run's step right after the caller's commit (the ingest knows it). With
        it, and the run's index already in memory (IndexRegistry.refresh has just applied
        that commit), nothing is read from the database: the due check and the snapshot come
        from memory, and only the write is a transaction (the read cost as much as the
        write, on every post)."""
        with self._locks_guard:
            lock = self._run_locks.setdefault(run_id, threading.Lock())
        # Serialised per run so an older state never overwrites a newer one of the same step.
        with lock:
            entry = self._registry.loaded(run_id) if step is not None else None
            if step is not None and entry is not None:
                now = time.monotonic()
                if not force and not self._due(run_id, step, now):
                    self._schedule_trailing(run_id, now)
                    return False
                with entry.lock:
                    values = snapshot(entry.index)
            else:
                with self._transaction() as uow:
                    run = run_store.get_by_id(uow.session, run_id)
                    if run is None:
                        return False
                    step = run.max_step if run.max_step is not None else 0
                    now = time.monotonic()
                    if not force and not self._due(run_id, step, now):
                        self._schedule_trailing(run_id, now)
                        return False
                    entry = self._registry.get(uow.session, run)
                    with entry.lock:
                        values = snapshot(entry.index)
            # The write in a transaction of its own: a SQLite reader that starts writing fails
            # if another writer committed meanwhile; a fresh transaction just waits its turn.
            with self._transaction() as uow:
                store.upsert_snapshot(uow.session, run_id, step, values)
                in_order = store.ids_in_step_order(uow.session, run_id)
                store.delete_ids(uow.session, ids_to_thin(in_order, self.max_points))
            self._last[run_id] = (step, now)
            return True

    def _schedule_trailing(self, run_id: int, now: float) -> None:
        """One pending trailing write per run, when its interval ends."""
        with self._locks_guard:
            if run_id in self._trailing:
                return
            last = self._last.get(run_id)
            delay = max(0.0, self.min_interval_s - (now - last[1])) if last else 0.0
            timer = threading.Timer(delay, self._write_trailing, (run_id,))
            timer.daemon = True
            self._trailing[run_id] = timer
        timer.start()

    def _write_trailing(self, run_id: int) -> None:
        with self._locks_guard:
            self._trailing.pop(run_id, None)
        try:
            self.record(run_id, force=True)
        except Exception:  # a background write: logged, retried by the next post
            log.exception("could not write the trailing history snapshot of run %s", run_id)

    def close(self) -> None:
        """Cancel pending trailing writes (the app is shutting down)."""
        with self._locks_guard:
            timers, self._trailing = list(self._trailing.values()), {}
        for timer in timers:
            timer.cancel()

    def _due(self, run_id: int, step: int, now: float) -> bool:
        """A snapshot is due when the step moved or min_interval_s passed since the last."""
        last = self._last.get(run_id)
        return not (last and last[0] == step and now - last[1] < self.min_interval_s)


# ---- reading ----------------------------------------------------------------------------


def history_point(row: RunHistory | Row[Any] | Any) -> HistoryPoint:
    """A snapshot as the API shows it (from an ORM object or a row of its columns)."""
    zones = Zones.model_validate(row, from_attributes=True)  # the row's four zone columns
    return HistoryPoint(
        step=row.step,
        zones=zones,
        mean_pass_rate=row.mean_pass_rate,
        mean_weight=row.mean_weight,
        effective_problems=row.effective_problems,
        created_at=row.created_at,
    )


def live_point(run: Run, index: SamplingIndex) -> HistoryPoint:
    """The run's state now, as a history point at its current step (docs/architecture.md,
    "An outcome without a step"): what the difficulty cards show, from the same index."""
    step = run.max_step if run.max_step is not None else 0
    return history_point(SimpleNamespace(step=step, **snapshot(index)))  # shaped like a row


def with_live_point(points: list[HistoryPoint], live: HistoryPoint | None) -> list[HistoryPoint]:
    """Stored points with the newest replaced by (or extended with) the live one: history is
    never staler than the cards, whatever throttled or failed the last stored snapshot."""
    if live is None:
        return points
    if points and points[-1].step == live.step:
        if _same_state(points[-1], live):  # keep the stored one and when it was taken
            return points
        return [*points[:-1], live]
    if not points or live.step > points[-1].step:
        return [*points, live]
    return points


def history(uow: UnitOfWork, run: Run, registry: IndexRegistry) -> list[HistoryPoint]:
    points = [history_point(row) for row in store.list_for_run(uow.session, run.id)]
    if not points and not run.version:  # no outcome yet: no history
        return points
    entry = registry.get(uow.session, run)
    with entry.lock:
        live = live_point(run, entry.index)
    return with_live_point(points, live)


def _top_slots(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Slots where mask holds with the k largest values, largest first (O(N), no full sort)."""
    candidates = np.flatnonzero(mask)
    if k <= 0 or len(candidates) == 0:
        return np.empty(0, dtype=np.int64)
    if len(candidates) > k:
        candidates = candidates[np.argpartition(-values[candidates], k - 1)[:k]]
    return candidates[np.argsort(-values[candidates], kind="stable")]


def _same_state(a: HistoryPoint, b: HistoryPoint) -> bool:
    return a.model_dump(exclude={"created_at"}) == b.model_dump(exclude={"created_at"})


class _SlotStats(TypedDict):
    """A problem's numbers (ProblemSummary's), copied out of the index under its lock: the
    texts are read after it is released."""

    attempts: float
    successes: float
    pass_rate: float
    weight: float
    last_step: int


def _slot_stats(arrays: IndexArrays, slots: np.ndarray) -> list[tuple[int, _SlotStats]]:
    """(problem id, its numbers) per slot."""
    att, succ = arrays.attempts[slots], arrays.successes[slots]
    return [
        (
            int(arrays.ids[s]),
            _SlotStats(
                attempts=float(a),
                successes=float(k),
                pass_rate=float(np.clip(k / a, 0.0, 1.0)),
                weight=float(arrays.weights[s]),
                last_step=int(arrays.last_step[s]),
            ),
        )
        for s, a, k in zip(slots, att, succ, strict=True)
    ]


def _summaries(
    rows: list[tuple[int, _SlotStats]], shown: dict[int, Preview]
) -> list[ProblemSummary]:
    return [ProblemSummary(**numbers, **shown[pid]) for pid, numbers in rows]


def overview(uow: UnitOfWork, run: Run, registry: IndexRegistry, bins: int, top: int) -> Overview:
    """What the dashboard shows: summaries only, whatever the run's size."""
    entry = registry.get(uow.session, run)
    with entry.lock:
        index = entry.index
        report = index.difficulty(bins)
        arrays = index.arrays()
        zone = zones(arrays.attempts, arrays.successes)
        frontier = _slot_stats(arrays, _top_slots(arrays.weights, zone == ZONE_FRONTIER, top))
        mastered = _slot_stats(
            arrays, _top_slots(arrays.last_step.astype(np.int64), zone == ZONE_MASTERED, top)
        )
        mean_p = index.summary()["mean_pass_rate"]
    shown = previews(uow, [pid for pid, _ in frontier + mastered])
    dataset = dataset_store.get_by_id(uow.session, run.dataset_id)
    curve = kernel_curve(estimator_for(run).kernel, report["histogram"]["edges"])
    return Overview(
        run=run_service.run_view(run, dataset.name if dataset else ""),
        difficulty=Difficulty.model_validate(report),
        mean_pass_rate=mean_p,
        top_frontier=_summaries(frontier, shown),
        recently_mastered=_summaries(mastered, shown),
        kernel_curve=KernelCurve.model_validate(curve),
    )

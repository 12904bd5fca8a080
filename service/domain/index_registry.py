"""Per-run in-memory sampling indexes, kept in step with the database.

The database is the source of truth. An index is built in bulk on first use, then kept
current by re-reading the ``problem_stats`` rows of problems that outcome requests newer than
the last version seen touched (found through ``outcome_batches``, indexed by version):
right after this process commits outcomes, and at most ``sync_interval_s`` apart for writes
made by other replicas. Rows carry absolute values, so applying one twice is harmless.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.curriculum.drift import DriftModel
from service.curriculum.index import SamplingIndex
from service.domain import predictions
from service.domain.estimation import estimator_for
from service.domain.runs import RunRef
from service.models import Run
from service.store import datasets as dataset_store
from service.store import outcome_log
from service.store import priors as prior_store
from service.store import stats as stats_store


@dataclass
class RunIndex:
    run_id: int
    dataset_id: int
    index: SamplingIndex
    version: int
    max_problem_id: int
    synced_at: float
    priors_version: int = 0  # the run's priors_version the index holds the priors of
    drift: predictions.Drift | None = None  # runs with the predicted estimator only
    lock: threading.RLock = field(default_factory=threading.RLock)  # guards the index
    sync_lock: threading.Lock = field(default_factory=threading.Lock)  # one sync at a time


class IndexRegistry:
    def __init__(self, session_factory: sessionmaker[Session], sync_interval_s: float) -> None:
        self._session_factory = session_factory
        self._sync_interval_s = sync_interval_s
        self._indexes: dict[int, RunIndex] = {}
        self._build_locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, session: Session, run: Run | RunRef) -> RunIndex:
        """The run's index, built if needed and synced first when the policy says so."""
        entry = self._indexes.get(run.id)
        if entry is None:
            return self._build_once(session, run)
        if self._needs_sync(entry):
            if self._sync_interval_s <= 0:
                with entry.sync_lock:  # "always current": wait for any sync in flight
                    self._sync(session, entry)
            elif entry.sync_lock.acquire(blocking=False):
                try:
                    self._sync(session, entry)
                finally:
                    entry.sync_lock.release()
            # else another request started syncing since _needs_sync looked: serve what
            # we have, as the policy does for a sync in flight.
        return entry

    def fresh(self, run_id: int) -> RunIndex | None:
        """The run's index when it is built and the policy needs no sync, else None.

        No database access: what the event loop may call without blocking on I/O."""
        entry = self._indexes.get(run_id)
        return None if entry is None or self._needs_sync(entry) else entry

    def loaded(self, run_id: int) -> RunIndex | None:
        """The run's index if this process has built it, however fresh (no database access;
        right after refresh() it holds this process's own commit)."""
        return self._indexes.get(run_id)

    def _needs_sync(self, entry: RunIndex) -> bool:
        """THE freshness policy, for get() and fresh() alike: an index is served as it is
        until sync_interval_s has passed since its last sync (0: synced before every use);
        past that, it is still served as it is while another thread syncs it (staleness stays
        ~ the interval instead of 30 requests piling up identical syncs)."""
        if time.monotonic() - entry.synced_at < self._sync_interval_s:
            return False
        return self._sync_interval_s <= 0 or not entry.sync_lock.locked()

    def refresh(
        self, run_id: int, version: int | None = None, rows: list[np.ndarray] | None = None
    ) -> None:
        """Make this process's just-committed write visible (called after commit).

        ``rows``: the merged problem_stats rows that write produced, at run ``version``. When
        the index is exactly one version behind, they are the whole delta and are applied
        without a database round trip; otherwise (another writer in between, problems this
        index has not seen) it syncs from the database.
        """
        entry = self._indexes.get(run_id)
        if entry is None:
            return
        # Blocking: this process's own commit must be visible to its next batch, and a sync
        # already in flight may have read the database before that commit.
        with entry.sync_lock:
            if rows is not None and version is not None and self._apply_own(entry, version, rows):
                return
            with self._session_factory() as session:
                self._sync(session, entry)

    @staticmethod
    def _apply_own(entry: RunIndex, version: int, rows: list[np.ndarray]) -> bool:
        ids, attempts, successes, last_step = rows
        with entry.lock:
            if entry.version != version - 1 or entry.drift is not None:
                return False  # (the drift model reads the outcomes themselves: a sync)
            if np.any(entry.index.slots_of(ids) < 0):
                return False  # problems added by another process: a full sync adds them
            entry.index.set_stats(ids, attempts, successes, last_step)
            entry.version = version
        return True

    def invalidate_dataset(self, dataset_id: int) -> None:
        """New problems were committed: the next use of each run on it syncs first."""
        for entry in list(self._indexes.values()):
            if entry.dataset_id == dataset_id:
                entry.synced_at = float("-inf")

    def forget(self, run_id: int) -> None:
        self._indexes.pop(run_id, None)

    def _build_once(self, session: Session, run: Run | RunRef) -> RunIndex:
        with self._guard:
            lock = self._build_locks.setdefault(run.id, threading.Lock())
        with lock:
            entry = self._indexes.get(run.id)
            if entry is not None:
                return entry
            # Read the versions before the rows: rows newer than them are re-pulled later,
            # which is harmless because they carry absolute values.
            version, max_step, priors_version = prior_store.sync_state(session, run.id)
            problem_ids = dataset_store.problem_ids_after(session, run.dataset_id, 0)
            stat_ids, attempts, successes, last_step = stats_store.all_stats(session, run.id)
            index = SamplingIndex.build(
                problem_ids, estimator_for(run), stat_ids, attempts, successes, last_step
            )
            if priors_version and not _apply_priors(index, prior_store.all_priors(session, run.id)):
                priors_version -= 1  # a prior of a problem added meanwhile: the next sync
            entry = RunIndex(
                run_id=run.id,
                dataset_id=run.dataset_id,
                index=index,
                version=version,
                max_problem_id=int(problem_ids[-1]) if len(problem_ids) else 0,
                synced_at=time.monotonic(),
                priors_version=priors_version,
            )
            if run.estimator.kind == "predicted":
                entry.drift = predictions.Drift(DriftModel(index.n_problems))
                log = predictions.read_since(session, run.id, None)
                predictions.observe(entry.drift, index, log, version)
                predictions.predict(entry.drift, index, max_step)
            self._indexes[run.id] = entry
            return entry

    def _sync(self, session: Session, entry: RunIndex) -> None:
        # Read outside the lock, so samplers (which may run on the event loop) never wait on
        # database I/O; apply under it. Rows carry absolute values and versions only grow, so
        # a sync that lost a race to a newer one is skipped rather than applied over it.
        seen_version, seen_max_id = entry.version, entry.max_problem_id
        version, max_step, priors_version = prior_store.sync_state(session, entry.run_id)
        new_ids = dataset_store.problem_ids_after(session, entry.dataset_id, seen_max_id)
        rows = log = None
        if version > seen_version:
            touched = outcome_log.problem_ids_since(session, entry.run_id, seen_version)
            rows = stats_store.stats_of(session, entry.run_id, touched)
            if entry.drift is not None:
                log = predictions.read_since(session, entry.run_id, entry.drift)
        # Priors change rarely (an upload): on a new priors version all of them are re-read.
        priors = None
        if priors_version > entry.priors_version:
            priors = prior_store.all_priors(session, entry.run_id)
        with entry.lock:
            if len(new_ids):
                # Ids arrive in increasing order: uploads to a dataset are serialised
                # (store.datasets.lock_for_append), so none can commit below one seen.
                entry.index.add_problems(new_ids)
                entry.max_problem_id = max(entry.max_problem_id, int(new_ids[-1]))
            if rows is not None and version > entry.version:
                ids, attempts, successes, last_step = rows
                if len(ids):
                    entry.index.set_stats(ids, attempts, successes, last_step)
                entry.version = version
            if priors is not None and priors_version > entry.priors_version:
                if _apply_priors(entry.index, priors):
                    entry.priors_version = priors_version
            entry.synced_at = time.monotonic()
        if entry.drift is not None and (log is not None or len(new_ids)):
            # The model is only touched by syncs (one at a time: sync_lock), never by draws:
            # fitting it (O(N), 0.2 s at a million problems) keeps the index's lock free.
            if log is not None:
                predictions.observe(entry.drift, entry.index, log, version)
            rates = predictions.rates(entry.drift, entry.index.n_problems, max_step)
            with entry.lock:
                entry.index.set_predictions(rates)


def _apply_priors(index: SamplingIndex, priors: list[np.ndarray]) -> bool:
    """Every prior the database holds, into the index; False when some name problems the
    index has not seen yet (added since it read the problems): those wait for the next sync."""
    ids, attempts, successes = priors
    known = index.slots_of(ids) >= 0
    index.replace_priors(ids[known], attempts[known], successes[known])
    return bool(known.all())

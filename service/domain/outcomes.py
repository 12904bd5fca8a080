"""Outcome ingest: atomic, idempotent, and O(touched problems) in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from service.curriculum.estimators import merge_factors
from service.db import UnitOfWork
from service.domain.views import OutcomesAccepted
from service.errors import Conflict, IdempotentReplay, InvalidItems
from service.models import Run
from service.store import datasets as dataset_store
from service.store import errored as errored_store
from service.store import outcome_log
from service.store import runs as run_store
from service.store import stats as stats_store


def body_hash(outcomes: Sequence[Mapping[str, Any]]) -> str:
    """Digest of the canonical body (sorted keys, compact; an absent step = a null step, an
    absent errored = 0, left out so that keys stored before `errored` existed still match)."""
    canonical = [_canonical(o) for o in outcomes]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _canonical(outcome: Mapping[str, Any]) -> Mapping[str, Any]:
    if "errored" not in outcome:  # the common case, as cheap as before `errored` existed
        return outcome if "step" in outcome else {**outcome, "step": None}
    canonical = dict(outcome)
    if not canonical["errored"]:
        del canonical["errored"]
    canonical.setdefault("step", None)
    return canonical


def aggregate(
    problem_ids: np.ndarray,
    attempts: np.ndarray,
    successes: np.ndarray,
    steps: np.ndarray,
    half_life_steps: float | None,
    window: str = "all",
) -> dict[str, np.ndarray]:
    """One row per distinct problem: effective counts at its newest step in this request.

    Each outcome is discounted to the newest step T by the core's merge rule (merge_factors:
    2^(-(T - t_i)/h), or 1 at T and 0 before it for window "latest") — the same
    order-independent rule the SQL upsert applies when merging with stored counts.
    """
    unique, inverse = np.unique(problem_ids, return_inverse=True)
    newest = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(newest, inverse, steps)
    factor, _ = merge_factors(steps, newest[inverse], half_life_steps, window)
    count = len(unique)
    return {
        "problem_id": unique,
        "attempts": np.bincount(inverse, attempts * factor, minlength=count),
        "successes": np.bincount(inverse, successes * factor, minlength=count),
        "total_attempts": np.bincount(inverse, attempts, minlength=count).astype(np.int64),
        "total_successes": np.bincount(inverse, successes, minlength=count).astype(np.int64),
        "last_step": newest,
    }


def unknown_problem_ids(unknown: list[str]) -> InvalidItems:
    """Outcomes of problems the run's dataset does not have: none applied (the first 1,000)."""
    return InvalidItems(
        "outcomes",
        f"{len(unknown)} unknown problem id(s) for this run's dataset; nothing was applied",
        items=unknown[:1000],
    )


def _check_replay(uow: UnitOfWork, run: Run, key: str | None, digest: str) -> None:
    if key is None:
        return
    record = stats_store.get_idempotency(uow.session, run.id, key)
    if record is None:
        return
    if record.body_hash != digest:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used with a different body for run {run.name!r}"
        )
    raise IdempotentReplay(record.response)


def _record_errored(
    session: Any,
    run_id: int,
    outcomes: Sequence[Mapping[str, Any]],
    problem_ids: np.ndarray,
    steps: np.ndarray,
) -> None:
    """Errored attempts, summed per problem, go to their own table (store/errored.py)."""
    errored = np.fromiter((o.get("errored") or 0 for o in outcomes), np.int64, len(outcomes))
    some = errored > 0
    if not some.any():
        return
    unique, inverse = np.unique(problem_ids[some], return_inverse=True)
    newest = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(newest, inverse, steps[some])
    totals = np.bincount(inverse, errored[some], minlength=len(unique)).astype(np.int64)
    errored_store.add(session, run_id, unique, totals, newest)


def ingest(
    uow: UnitOfWork,
    run: Run,
    outcomes: Sequence[Mapping[str, Any]],
    idempotency_key: str | None,
    on_committed: Callable[[int, int, list[np.ndarray], int], None],
) -> OutcomesAccepted:
    session = uow.session
    digest = body_hash(outcomes)
    _check_replay(uow, run, idempotency_key, digest)

    external = [o["problem_id"] for o in outcomes]
    mapping = dataset_store.ids_for_external(session, run.dataset_id, sorted(set(external)))
    unknown = sorted(set(external) - mapping.keys())
    if unknown:
        raise unknown_problem_ids(unknown)

    given_steps = [o["step"] for o in outcomes if o.get("step") is not None]
    version = run_store.bump_version(session, run.id, max(given_steps) if given_steps else None)
    # Re-check under the run's write lock: a concurrent twin may have committed meanwhile.
    _check_replay(uow, run, idempotency_key, digest)
    _, max_step = run_store.current_state(session, run.id)
    current_step = max_step if max_step is not None else 0

    problem_ids = np.fromiter((mapping[p] for p in external), dtype=np.int64, count=len(external))
    attempts = np.fromiter((o["attempts"] for o in outcomes), dtype=np.int64, count=len(outcomes))
    successes = np.fromiter((o["successes"] for o in outcomes), dtype=np.int64, count=len(outcomes))
    steps = np.fromiter(
        (current_step if o.get("step") is None else o["step"] for o in outcomes),
        dtype=np.int64,
        count=len(outcomes),
    )
    outcome_log.append(
        session,
        run.id,
        version,
        problem_ids,
        attempts,
        successes,
        [o.get("step") for o in outcomes],
    )
    _record_errored(session, run.id, outcomes, problem_ids, steps)
    graded = attempts > 0  # an all-errored group has nothing to say about p (nor its step)
    if not graded.all():
        problem_ids, attempts, successes, steps = (
            a[graded] for a in (problem_ids, attempts, successes, steps)
        )
    aggregated = aggregate(
        problem_ids,
        attempts.astype(np.float64),
        successes.astype(np.float64),
        steps,
        run.estimator.half_life_steps,
        run.estimator.window,
    )
    merged = stats_store.upsert_stats(
        session, run.id, aggregated, run.estimator.half_life_steps, run.estimator.window
    )
    response = OutcomesAccepted(accepted=len(outcomes))
    if idempotency_key is not None:  # a replay sends the stored body as is (IdempotentReplay)
        stored = response.model_dump()
        stats_store.insert_idempotency(session, run.id, idempotency_key, digest, stored)
    # The merged rows let this process's index apply its own write without re-reading it.
    uow.after_commit(lambda: on_committed(run.id, version, merged, current_step))
    return response

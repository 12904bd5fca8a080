"""Several consumers of one run: rollout leases, pinned (rank-consistent) draws, and draws
that skip problems drawn but not yet graded.

- A lease marks a problem as being rolled out by a claimer until its outcomes arrive or the
  lease expires (store/leases.py decides "graded" from the stats, so ingest is untouched).
- A draw key pins a batch: the first request with the key draws and stores it, every later
  one (another rank, a retry) gets the same items whatever was posted in between.
- Claims of one run are serialised (store.leases.lock_claims), so two claimers never get the
  same problem and a rank that waited finds the draw the first one stored.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.curriculum import draws
from service.db import UnitOfWork
from service.domain import curriculum
from service.domain.index_registry import IndexRegistry
from service.domain.prompt_cache import PromptCache
from service.domain.runs import RunRef
from service.domain.views import RolloutQueue
from service.errors import Conflict
from service.models import Run
from service.store import leases as lease_store

CLAIM_ROUNDS = 4  # a claim that lost problems to a graded/expired-lease race tries again


@dataclass(frozen=True)
class LeaseSpec:
    claimer: str
    ttl_s: float


@dataclass(frozen=True)
class BatchSpec:
    size: int
    seed: int | None
    mode: draws.Mode
    fill: draws.FillPolicy = "none"
    skip_leased: bool = False
    epsilon: float = 0.0  # the exploration share (curriculum/exploration.py)

    def digest(self) -> str:
        """What a draw key pins: the same key with another spec is a caller error (409)."""
        body: dict[str, Any] = {
            "size": self.size,
            "seed": self.seed,
            "mode": self.mode,
            "fill": self.fill,
            "skip_leased": self.skip_leased,
        }
        if self.epsilon:  # only when asked for: keys pinned before it existed still match
            body["epsilon"] = self.epsilon
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def batch(
    uow: UnitOfWork,
    registry: IndexRegistry,
    prompts: PromptCache,
    run: RunRef,
    spec: BatchSpec,
    draw_key: str | None,
    lease: LeaseSpec | None,
) -> dict[str, Any]:
    session = uow.session
    digest = spec.digest()
    if draw_key is not None:
        served = _serve_pinned(uow, prompts, run, draw_key, digest)
        if served is not None:
            return served
    now = time.time()
    if draw_key is not None or lease is not None:
        lease_store.lock_claims(session, run.id, now)
        if draw_key is not None:  # another rank may have drawn while this one waited
            served = _serve_pinned(uow, prompts, run, draw_key, digest)
            if served is not None:
                return served
    exclude = lease_store.active(session, run.id, now) if spec.skip_leased else None
    entry = registry.get(session, run)
    drawn = curriculum.draw_or_conflict(
        entry,
        spec.size,
        spec.seed,
        spec.mode,
        spec.fill,
        exclude,
        epsilon=spec.epsilon,
        draw_key=draw_key,
    )
    if draw_key is not None:
        lease_store.insert_draw(session, run.id, draw_key, digest, _pack(drawn))
    if lease is not None:
        lease_store.claim(session, run.id, drawn.problem_ids, lease.claimer, now + lease.ttl_s, now)
    return _items(uow, prompts, run, drawn)


def rollout_queue(
    uow: UnitOfWork,
    run: Run,
    registry: IndexRegistry,
    limit: int,
    stale_after: int | None,
    lease: LeaseSpec | None,
    skip_leased: bool,
) -> RolloutQueue:
    """The rollout queue without leased problems; with a lease, the items are claimed."""
    session = uow.session
    now = time.time()
    if lease is not None:
        lease_store.lock_claims(session, run.id, now)
    exclude = lease_store.active(session, run.id, now)
    entry = registry.get(session, run)
    step, stale = run.max_step or 0, curriculum.stale_after_for(run, stale_after)
    picked: list[tuple[int, str]] = []
    for _ in range(CLAIM_ROUNDS):
        with entry.lock:
            queue = draws.queue_excluding(entry.index, limit - len(picked), step, stale, exclude)
        if not queue or lease is None:
            picked += queue
            break
        ids = np.array([pid for pid, _ in queue], dtype=np.int64)
        won = set(
            lease_store.claim(session, run.id, ids, lease.claimer, now + lease.ttl_s, now).tolist()
        )
        picked += [entry_ for entry_ in queue if entry_[0] in won]
        if len(picked) >= limit:
            break
        exclude = np.concatenate([exclude, ids])
    return curriculum.queue_items(uow, picked)


def _serve_pinned(
    uow: UnitOfWork, prompts: PromptCache, run: RunRef, key: str, digest: str
) -> dict[str, Any] | None:
    stored = lease_store.get_draw(uow.session, run.id, key)
    if stored is None:
        return None
    if stored.body_hash != digest:
        raise Conflict(
            f"draw_key {key!r} was already used with a different batch request for run {run.name!r}"
        )
    return _items(uow, prompts, run, _unpack(stored.draw))


def _items(uow: UnitOfWork, prompts: PromptCache, run: RunRef, drawn: draws.Draw) -> dict[str, Any]:
    ids = drawn.problem_ids.tolist()
    texts = prompts.texts(uow.session, run.dataset_id, ids)
    return curriculum.batch_items(drawn, [texts[pid] for pid in ids])


def _pack(drawn: draws.Draw) -> dict[str, Any]:
    return {
        "problem_ids": drawn.problem_ids.tolist(),
        "weights": drawn.weights.tolist(),
        "loss_weights": drawn.loss_weights.tolist(),
        # JSON has no NaN: an unseen problem's pass rate is stored as null.
        "pass_rates": [None if math.isnan(p) else p for p in drawn.pass_rates.tolist()],
        "available": int(drawn.available),
        "sources": None if drawn.sources is None else drawn.sources.tolist(),
        "exploring": drawn.exploring,
    }


def _unpack(stored: dict[str, Any]) -> draws.Draw:
    rates = [math.nan if p is None else p for p in stored["pass_rates"]]
    sources = stored["sources"]
    return draws.Draw(
        problem_ids=np.asarray(stored["problem_ids"], dtype=np.int64),
        weights=np.asarray(stored["weights"], dtype=np.float64),
        loss_weights=np.asarray(stored["loss_weights"], dtype=np.float64),
        pass_rates=np.asarray(rates, dtype=np.float64),
        available=int(stored["available"]),
        sources=None if sources is None else np.asarray(sources, dtype=np.int8),
        exploring=bool(stored.get("exploring", False)),  # pins stored before it: False
    )

"""Posting graded outcomes exactly once: the one idempotency-key rule of the trainer half.

Every poster (the bundled recipes' estimates, TRL's reward wrapper, the estimation callback,
the prime-rl sampler) keys a post by (prefix, step, rank) and a digest of its body. The same
call again (an HTTP retry, a duplicated call, a replay after a crash that re-rolls the same
seeded samples) replays on the service and counts once; different rollouts at the same step
(a resumed run re-doing a step with new weights, another rank's share) count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from trainer_client.client import PacedClient


def outcome_key(
    prefix: str, step: int | None, rank: int, outcomes: Sequence[Mapping[str, Any]]
) -> str:
    """The Idempotency-Key of one post: per (prefix, step, rank) and the body's content."""
    digest = hashlib.sha256(orjson.dumps(outcomes, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}:step{step}:rank{rank}:{digest[:16]}"


def post_outcomes(
    client: PacedClient,
    run: str,
    outcomes: list[dict[str, Any]],
    *,
    step: int | None,
    rank: int = 0,
    key_prefix: str | None = None,
) -> None:
    """Post `outcomes` under outcome_key (prefix: the run's name unless given); none: no call."""
    if outcomes:
        key = outcome_key(run if key_prefix is None else key_prefix, step, rank, outcomes)
        client.post_outcomes(run, outcomes, idempotency_key=key)


def group_outcomes(
    problem_ids: Iterable[str], passed: Iterable[bool], step: int | None
) -> list[dict[str, Any]]:
    """One outcome per problem (first-appearance order): attempts = its rollouts, successes
    = how many passed."""
    counts: dict[str, list[int]] = {}
    for pid, ok in zip(problem_ids, passed, strict=True):
        tally = counts.setdefault(str(pid), [0, 0])
        tally[0] += 1
        tally[1] += int(bool(ok))
    return [
        {"problem_id": pid, "attempts": n, "successes": k, "step": step}
        for pid, (n, k) in counts.items()
    ]

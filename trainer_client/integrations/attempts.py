"""A group's attempts as paced counts them, with the errored ones kept apart.

An attempt that errored or timed out (prime-rl's `Episode.errors` / `is_timeout`, slime's
ABORTED / FAILED samples, a reward that is not a number) says nothing about how hard the
problem is: it is not a failure. Each adapter turns its framework's group into a `GroupTally`
(the graded attempts, and how many errored) and sends it with an `OutcomeSender`.

The service does not take errored attempts yet (issue 28, point 4): `tally_outcomes` posts the
graded attempts only, and the errored count stays on the tally and in the sender's `totals`.
When the API accepts it, `tally_outcomes` is the one place that adds `errored` to an outcome.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.errors import RateLimited, ServiceUnavailable
from trainer_client.integrations.draws import distributed_rank, outcome_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupTally:
    problem_id: str
    passed: tuple[bool, ...]  # one per graded attempt
    errored: int = 0  # attempts that errored or timed out: not graded, not in p
    step: int | None = None

    @property
    def attempts(self) -> int:
        return len(self.passed)

    @property
    def successes(self) -> int:
        return sum(self.passed)


def tally_outcomes(tallies: Iterable[GroupTally]) -> list[dict[str, Any]]:
    """One outcome per (problem, step), in first-appearance order. Errored attempts go as
    `errored` (stored apart, never counted in p); a group whose every attempt errored is an
    outcome of 0 attempts with its errored count."""
    merged: dict[tuple[str, int | None], list[int]] = {}
    for tally in tallies:
        counts = merged.setdefault((tally.problem_id, tally.step), [0, 0, 0])
        counts[0] += tally.attempts
        counts[1] += tally.successes
        counts[2] += tally.errored
    outcomes: list[dict[str, Any]] = []
    for (pid, step), (n, k, errored) in merged.items():
        outcome: dict[str, Any] = {"problem_id": pid, "attempts": n, "successes": k, "step": step}
        if errored:  # left out when 0: the same body (and key) as before errored existed
            outcome["errored"] = errored
        if n or errored:
            outcomes.append(outcome)
    return outcomes


def _digest(identity: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(identity)).encode()).hexdigest()[:16]


class OutcomeSender:
    """Posts tallies exactly once. Each post is keyed by the integrations' rule (per step,
    rank and content) with a digest of the attempts' own ids (an episode id, a sample index)
    in its prefix: the same group sent again replays, two groups of one problem with equal
    counts are two posts. A service that is down or rate-limiting (after the client's own
    retries) leaves the post pending, with its key, for the next `send` or `flush`.
    `totals` counts what was delivered; a group sent again soon after (within the last
    RECENT keys) is not posted or counted twice here (the service would replay it anyway)."""

    RECENT = 4096

    def __init__(self, client: PacedClient, run: str, *, key_prefix: str) -> None:
        self.client, self.run, self.key_prefix = client, run, key_prefix
        self.pending: list[dict[str, Any]] = []  # {"key", "outcomes", "tallies"}
        self.totals = {"groups": 0, "attempts": 0, "successes": 0, "errored": 0}
        self._recent: dict[str, None] = {}  # keys sent lately, oldest first

    def send(self, tallies: Sequence[GroupTally], identity: Iterable[str]) -> list[dict[str, Any]]:
        """Owe paced these tallies; returns the outcomes (empty when every attempt errored)."""
        outcomes = tally_outcomes(tallies)
        steps = {t.step for t in tallies}
        step = steps.pop() if len(steps) == 1 else None
        key = outcome_key(
            f"{self.key_prefix}:{_digest(identity)}", step, distributed_rank(), outcomes
        )
        summary = {
            "groups": len(tallies),
            "attempts": sum(t.attempts for t in tallies),
            "successes": sum(t.successes for t in tallies),
            "errored": sum(t.errored for t in tallies),
        }
        if key not in self._recent:
            self._recent[key] = None
            if len(self._recent) > self.RECENT:
                del self._recent[next(iter(self._recent))]
            self.pending.append({"key": key, "outcomes": outcomes, "tallies": summary})
        self.flush()
        return outcomes

    def flush(self) -> bool:
        """Send what is pending, in order; True when nothing is left."""
        while self.pending:
            post = self.pending[0]
            if post["outcomes"]:
                try:
                    self.client.post_outcomes(
                        self.run, post["outcomes"], idempotency_key=post["key"]
                    )
                except (ServiceUnavailable, RateLimited) as error:
                    logger.warning("paced: %d outcome posts pending (%s)", len(self.pending), error)
                    return False
            self.pending.pop(0)
            for name, value in post["tallies"].items():
                self.totals[name] += value
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"pending": [dict(p) for p in self.pending], "totals": dict(self.totals)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pending = [dict(p) for p in state.get("pending", [])]
        self.totals.update(state.get("totals", {}))

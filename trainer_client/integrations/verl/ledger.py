"""What the replay buffer owes paced: graded groups recorded, posts not yet acknowledged.

Every terminal group is recorded once (by rollout id, uid@dispatch step) and its k of n goes
into a pending post *before* anything may evict it. A pending post carries its
Idempotency-Key from the start, so whatever happens next counts once:
- an HTTP retry after a lost answer replays (the client resends the same key);
- a post that failed for good (the service down) stays pending and is sent again at the next
  poll, with the same key;
- with `state_path`, recorded ids and pending posts are written to disk (atomically) before the
  post is sent, so a new process resends what the old one may or may not have delivered, and
  does not post again a group it already recorded (async trainers restore finished groups
  from their TransferQueue checkpoint).

The key is the integrations' rule (`draws.outcome_key`: per step, rank and content) with the
posted rollouts' ids in its prefix: two groups of one problem with equal k of n in one step
are two posts, not one replayed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.errors import RateLimited, ServiceUnavailable
from trainer_client.integrations.draws import distributed_rank, group_outcomes, outcome_key
from trainer_client.integrations.verl.groups import GradedGroup

logger = logging.getLogger(__name__)
STATE_VERSION = 1


def _digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


class OutcomeLedger:
    def __init__(
        self,
        client: PacedClient,
        run: str,
        *,
        key_prefix: str,
        state_path: str | Path | None = None,
    ) -> None:
        self.client = client
        self.run = run
        self.key_prefix = key_prefix
        self.state_path = Path(state_path) if state_path else None
        self.recorded: dict[str, set[str]] = {}  # partition -> rollout ids recorded
        self.pending: list[dict[str, Any]] = []  # {"key", "outcomes"} in recording order
        self.delivered = {"posts": 0, "groups": 0, "attempts": 0}
        if self.state_path is not None and self.state_path.exists():
            self.load_state_dict(json.loads(self.state_path.read_text()))

    # ---- recording -------------------------------------------------------------------------

    def is_recorded(self, partition_id: str, rollout: str) -> bool:
        return rollout in self.recorded.get(partition_id, ())

    def keep_only(self, present: Mapping[str, Iterable[str]]) -> None:
        """Forget rollouts whose uid left TransferQueue (trained, evicted, cleared): a uid
        never returns once gone, so the set stays as small as what is in flight."""
        for partition_id in list(self.recorded):
            uids = set(present.get(partition_id, ()))
            kept = {r for r in self.recorded[partition_id] if r.split("@")[0] in uids}
            if kept:
                self.recorded[partition_id] = kept
            else:
                del self.recorded[partition_id]

    def record(self, partition_id: str, step: int, groups: list[GradedGroup]) -> None:
        """Owe paced these groups' outcomes (one post); saved before anything is sent."""
        groups = [
            g for g in groups if g.passed and not self.is_recorded(partition_id, g.rollout_id)
        ]
        if not groups:
            return
        problem_ids = [g.problem_id for g in groups for _ in g.passed]
        passed = [ok for g in groups for ok in g.passed]
        outcomes = group_outcomes(problem_ids, passed, step)
        prefix = f"{self.key_prefix}:{_digest(g.rollout_id for g in groups)}"
        key = outcome_key(prefix, step, distributed_rank(), [*outcomes])
        self.pending.append({"key": key, "outcomes": outcomes, "groups": len(groups)})
        self.recorded.setdefault(partition_id, set()).update(g.rollout_id for g in groups)
        self.save()

    # ---- delivering ------------------------------------------------------------------------

    def flush(self) -> bool:
        """Send the pending posts in order; True when none is left. A service that is down or
        rate-limiting (after the client's own retries) leaves them pending for the next
        flush; any other error (an unknown run or problem id) is a configuration error and
        raises."""
        while self.pending:
            post = self.pending[0]
            try:
                self.client.post_outcomes(self.run, post["outcomes"], idempotency_key=post["key"])
            except (ServiceUnavailable, RateLimited) as error:
                logger.warning("paced: %d outcome posts pending (%s)", len(self.pending), error)
                return False
            self.pending.pop(0)
            self.delivered["posts"] += 1
            self.delivered["groups"] += post["groups"]
            self.delivered["attempts"] += sum(o["attempts"] for o in post["outcomes"])
            self.save()
        return True

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "recorded": {p: sorted(ids) for p, ids in self.recorded.items()},
            "pending": [dict(post) for post in self.pending],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"paced ledger state version {state.get('version')!r} unknown")
        self.recorded = {p: set(ids) for p, ids in state["recorded"].items()}
        self.pending = [dict(post) for post in state["pending"]]

    def save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        with temporary.open("w") as handle:
            handle.write(json.dumps(self.state_dict()))
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the post it describes is sent
        os.replace(temporary, self.state_path)  # a crash leaves the old file or the new one

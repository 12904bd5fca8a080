"""No wasted groups: a post-rollout zero-variance gate that refills the batch from paced.

In group-based RL (GRPO, DAPO, RLOO) a group whose K rewards are all equal has no advantage
and gives no gradient. The gate takes a step's drawn batch, rolls it out (the caller's
`rollout`), and then

1. posts every finished group's k of n (kept or dropped: a zero-variance group is
   information, it moves the problem's pass rate) under the one idempotency-key rule
   (outcomes.outcome_key: per step, rank and content), so an HTTP retry or the same post
   made twice counts once;
2. drops the zero-variance groups;
3. refills the empty slots with a fresh draw from the service under the current weights,
   skipping every problem this step already rolled out, and rolls those out; until the batch
   is full or the step's rollout budget (`max_groups` groups, the first batch included) is
   spent.

The refill needs no service change: the service draws without replacement (successive
sampling ∝ w: first appearances of an i.i.d. weighted sequence), and dropping a set S from
such a draw leaves a successive draw from the rest. So the gate asks for need + |S| problems
and keeps the first `need` it has not seen: exact, and seeded by (seed, step, round), so a
replayed step asks for the same refills. service/curriculum/draws.py excludes leased problems
the same way.

    gate = ZeroVarianceGate(client, "run1", size=32, max_groups=96)
    result = gate.step(step, drawn.items, rollout)   # rollout(items) -> list[RolledGroup]
    train_on(result.kept)                            # <= 32 groups, none zero-variance
    log(result.stats.metrics())                      # generated, kept, zero-variance share...

Framework-free: the bundled trainer, the TRL integration (integrations/trl_gate.py) and the
verl integration's metrics (integrations/verl/replay_buffer.py) share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from trainer_client._batch_format import BatchItem
from trainer_client.client import PacedClient
from trainer_client.errors import Conflict
from trainer_client.limits import DEFAULT_LIMITS
from trainer_client.trainer.outcomes import group_outcomes, post_outcomes
from trainer_client.trainer.seeds import derive_seed

Mode = Literal["proportional", "uniform", "thompson"]
Fill = Literal["none", "unseen", "unseen_then_uniform"]
ZERO_VARIANCE_ATOL = 1e-8  # TRL's own test (frac_reward_zero_std): isclose(std, 0)
METRIC_PREFIX = "paced_gate/"


@dataclass(frozen=True)
class RolledGroup:
    """One finished group: its rewards (what the advantage is built from) and which attempts
    passed (what is posted as k of n). `ref` is the caller's handle (its row, its index)."""

    problem_id: str
    rewards: tuple[float, ...]
    passed: tuple[bool, ...]
    ref: Any = None

    @property
    def zero_variance(self) -> bool:
        return is_zero_variance(self.rewards)


def is_zero_variance(rewards: Sequence[float]) -> bool:
    """All rewards equal (NaN rewards, unscorable ones, left out): no advantage."""
    finite = [r for r in rewards if not math.isnan(r)]
    return len(finite) < 2 or max(finite) - min(finite) <= ZERO_VARIANCE_ATOL


def rolled_group(problem_id: str, rewards: Sequence[float], threshold: float = 1.0, ref=None):
    """A group graded by a reward threshold (passed: reward >= threshold)."""
    values = tuple(float(r) for r in rewards)
    passed = tuple(not math.isnan(r) and r >= threshold for r in values)
    return RolledGroup(str(problem_id), values, passed, ref)


@dataclass
class GateStats:
    """One step of the gate. `generated` counts every group rolled out (first batch and
    refills); `zero_variance` those dropped; `refills` the refill rounds (draws) made."""

    step: int | None
    size: int
    generated: int = 0
    kept: int = 0
    zero_variance: int = 0
    refills: int = 0
    refilled_groups: int = 0
    budget_hit: bool = False
    exhausted: bool = False  # the service had no unseen problem left to refill with

    @property
    def zero_variance_share(self) -> float:
        return self.zero_variance / self.generated if self.generated else 0.0

    @property
    def short(self) -> int:
        """Slots left empty (the budget was spent or nothing was left to draw)."""
        return max(0, self.size - self.kept)

    def metrics(self, prefix: str = METRIC_PREFIX) -> dict[str, float]:
        return {
            f"{prefix}generated_groups": float(self.generated),
            f"{prefix}kept_groups": float(self.kept),
            f"{prefix}zero_variance_share": self.zero_variance_share,
            f"{prefix}refills": float(self.refills),
            f"{prefix}budget_hits": float(self.budget_hit),
            f"{prefix}short_groups": float(self.short),
        }


@dataclass
class GroupTally:
    """Finished groups and how many had zero variance, since the last reset: the gate's
    metrics where the trainer does its own filtering and refilling (verl's DAPO filter)."""

    groups: int = 0
    zero_variance: int = 0

    def add(self, rewards: Sequence[float]) -> None:
        self.groups += 1
        self.zero_variance += is_zero_variance(rewards)

    def metrics(self, prefix: str = METRIC_PREFIX) -> dict[str, float]:
        share = self.zero_variance / self.groups if self.groups else 0.0
        return {
            f"{prefix}generated_groups": float(self.groups),
            f"{prefix}zero_variance_groups": float(self.zero_variance),
            f"{prefix}zero_variance_share": share,
        }

    def reset(self) -> None:
        self.groups = self.zero_variance = 0


@dataclass
class GateResult:
    kept: list[RolledGroup]  # at most `size`, every one with non-zero reward variance
    dropped: list[RolledGroup]  # the zero-variance groups, in roll-out order
    stats: GateStats
    seen: list[str] = field(default_factory=list)  # every problem rolled out, in order


Rollout = Callable[[Sequence[Any]], Sequence[RolledGroup]]


class ZeroVarianceGate:
    """Drop zero-variance groups and refill from paced, within a per-step rollout budget.

    size: groups a step trains on. max_groups: groups a step may roll out in all (default
    3 x size, what DAPO's recipes generate). mode / fill / skip_leased: how refills are drawn
    (proportional ∝ w(p) by default; thompson: w at a posterior draw; uniform for a
    uniform-sampling trainer). post=False when
    something else already posts each group (TRL's PacedReward wrapper)."""

    def __init__(
        self,
        client: PacedClient,
        run: str,
        *,
        size: int,
        max_groups: int | None = None,
        mode: str = "proportional",
        fill: str | None = "unseen_then_uniform",
        skip_leased: bool | None = None,
        seed: int = 0,
        key_prefix: str | None = None,
        rank: int = 0,
        post: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.max_groups = 3 * size if max_groups is None else max_groups
        if self.max_groups < size:
            raise ValueError("max_groups must be >= size: the first batch is rolled out whole")
        self.client, self.run, self.size = client, run, size
        self.mode, self.fill, self.skip_leased = mode, fill, skip_leased
        self.seed, self.rank, self.post = seed, rank, post
        self.key_prefix = key_prefix or f"{run}/seed{seed}"
        self.history: list[GateStats] = []
        self._max_request: int | None = None

    # ---- one step --------------------------------------------------------------------------

    def step(self, step: int | None, first: Sequence[Any], rollout: Rollout) -> GateResult:
        """Roll out `first` (items with .problem_id), then refill until `size` groups have
        non-zero variance or the budget is spent."""
        stats = GateStats(step, self.size)
        result = GateResult([], [], stats)
        seen: set[str] = set()
        pending: list[Any] = list(first)
        if len(pending) > self.size:
            raise ValueError(f"the first batch has {len(pending)} problems for {self.size} slots")
        round_index = 0
        while pending:
            ids = [str(item.problem_id) for item in pending]
            result.seen.extend(ids)
            seen.update(ids)
            groups = list(rollout(pending))
            if len(groups) != len(pending):
                raise ValueError(f"rollout returned {len(groups)} groups for {len(pending)}")
            self.record(step, groups)
            stats.generated += len(groups)
            if round_index:
                stats.refilled_groups += len(groups)
            for group in groups:
                if group.zero_variance:
                    result.dropped.append(group)
                else:
                    result.kept.append(group)
            need = self.size - len(result.kept)
            if need <= 0:
                break
            allowed = min(need, self.max_groups - stats.generated)
            if allowed <= 0:
                stats.budget_hit = True
                break
            round_index += 1
            pending = self.refill(step, round_index, allowed, seen)
            stats.refills += 1
            if not pending:
                stats.exhausted = True
        stats.kept, stats.zero_variance = len(result.kept), len(result.dropped)
        self.history.append(stats)
        return result

    def record(self, step: int | None, groups: Sequence[RolledGroup]) -> list[dict[str, Any]]:
        """Post these groups' k of n (one post, keyed by its content: the same groups posted
        again, by a retry or a duplicated call, count once)."""
        problem_ids = [g.problem_id for g in groups for _ in g.passed]
        passed = [ok for g in groups for ok in g.passed]
        outcomes = group_outcomes(problem_ids, passed, step)
        if self.post:
            prefix = f"{self.key_prefix}:gate"
            post_outcomes(
                self.client, self.run, outcomes, step=step, rank=self.rank, key_prefix=prefix
            )
        return outcomes

    # ---- refills ---------------------------------------------------------------------------

    def refill(self, step: int | None, round_index: int, need: int, seen: set[str]):
        """Up to `need` problems drawn under the current weights, none of `seen`: the first
        `need` unseen ones of a draw of need + |seen| (see the module docstring)."""
        size = min(need + len(seen), self.max_request())
        try:
            batch = self.client.batch(
                self.run,
                size,
                seed=derive_seed(self.seed, step, "gate-refill", round_index),
                mode=cast(Mode, self.mode),
                fill=cast(Fill | None, self.fill),
                skip_leased=self.skip_leased,
            )
        except Conflict:  # nothing eligible: every problem mastered or intractable
            return []
        fresh: list[BatchItem] = [item for item in batch.items if item.problem_id not in seen]
        return fresh[:need]

    def max_request(self) -> int:
        if self._max_request is None:
            limits = getattr(self.client, "limits", None)
            self._max_request = (limits() if limits else DEFAULT_LIMITS).max_batch_size
        return self._max_request

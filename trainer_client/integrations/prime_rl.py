"""A prime-rl style task sampler backed by PACED: `next(sampler)` gives the next task,
`observe(group)` reports a group of graded rollouts of one task, `state_dict()` /
`load_state_dict()` checkpoint the position.

Tasks come from pinned PACED draws of `batch_size` problems (draw i under one key, so a
resumed orchestrator gets exactly the tasks the first one would have). Drawn tasks are
leased until observed: an asynchronous orchestrator that samples ahead of the rollouts it
has graded never gets a task twice while its rollouts are in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.integrations.draws import FILL, PacedDraws, post_group_outcomes


class PacedTaskSampler:
    def __init__(
        self,
        client: PacedClient | str,
        run: str,
        *,
        batch_size: int = 32,
        seed: int = 0,
        mode: str = "proportional",
        fill: str | None = FILL,
        lease_ttl_s: float = 3600.0,
        key_prefix: str | None = None,
        success_threshold: float = 1.0,
        reward_key: str = "reward",
    ) -> None:
        self.draws = PacedDraws(
            client,
            run,
            batch_size,
            seed=seed,
            mode=mode,
            fill=fill,
            skip_leased=True,
            lease_ttl_s=lease_ttl_s,
            key_prefix=key_prefix,
        )
        self.success_threshold = success_threshold
        self.reward_key = reward_key
        self.next_draw = 0
        self.offset = 0  # tasks of the current draw already handed out
        self._current: list[dict[str, Any]] | None = None
        self.posted: list[list[dict[str, Any]]] = []

    def __iter__(self) -> PacedTaskSampler:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._current is not None and self.offset >= len(self._current):
            self.next_draw, self.offset, self._current = self.next_draw + 1, 0, None
        if self._current is None:
            batch = self.draws.draw(self.next_draw)
            self._current = [item.model_dump() for item in batch.items]
            if not self._current:
                raise StopIteration
        task = self._current[self.offset]
        self.offset += 1
        return task

    @property
    def step(self) -> int:
        """The draw the latest task came from: the step outcomes are reported at."""
        return self.next_draw

    def observe(self, group: Sequence[Mapping[str, Any] | Any], step: int | None = None) -> None:
        """Report the graded rollouts of one task: each has its problem_id and a reward
        (passed when >= success_threshold). Reporting the same group again counts once."""
        problem_ids = [_get(rollout, "problem_id") for rollout in group]
        passed = [
            (reward := _get(rollout, self.reward_key)) is not None
            and reward >= self.success_threshold
            for rollout in group
        ]
        self.posted.append(
            post_group_outcomes(
                self.draws.client,
                self.draws.run,
                problem_ids,
                passed,
                self.step if step is None else step,
                key_prefix=f"{self.draws.key_prefix}:observe",
            )
        )

    def state_dict(self) -> dict[str, int]:
        return {"next_draw": self.next_draw, "offset": self.offset}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.next_draw, self.offset = int(state["next_draw"]), int(state["offset"])
        self._current = None
        if self.offset:  # re-read the pinned draw the position points into
            self._current = [item.model_dump() for item in self.draws.draw(self.next_draw).items]


def _get(rollout: Mapping[str, Any] | Any, key: str) -> Any:
    return rollout[key] if isinstance(rollout, Mapping) else getattr(rollout, key)

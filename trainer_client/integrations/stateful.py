"""A PACED sampler with state_dict / load_state_dict, for torchdata's StatefulDataLoader —
what verl checkpoints (verl 0.9 builds its train dataloader as
`StatefulDataLoader(dataset, sampler=train_sampler, ...)` and saves `state_dict()` with
each checkpoint).

Resuming reproduces the uninterrupted run exactly: the state is (draw index, indices
already yielded from that draw), and every draw is pinned under a draw key, so the
interrupted draw comes back with the same problems even though outcomes were posted since.
Draws after it depend only on the seed and the run's outcomes, as without the interruption.

Plugging it into verl (no verl import here: verl pulls Ray):

    sampler = PacedStatefulSampler.for_dataset(
        "http://paced:8000", "run1", dataset, size=config.data.train_batch_size,
        problem_id_column="problem_id", seed=config.data.seed,
    )
    trainer = RayPPOTrainer(config=config, ..., train_dataset=dataset, train_sampler=sampler)

(in a copy of verl's `main_ppo.TaskRunner.run`, where `create_rl_sampler` is called), and
post outcomes from the reward function (`trainer_client.integrations.draws.post_group_outcomes`
with the batch's uid/problem ids and the global step). Keep `data.dataloader_num_workers`
at 0 so indices are not drawn ahead of the checkpointed position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import Sampler

from trainer_client.client import PacedClient
from trainer_client.integrations.draws import FILL, PacedDraws


class PacedStatefulSampler(Sampler[int]):
    """Dataset indices from PACED draws of `draws.size` problems, each index repeated
    `repeat` times (e.g. rollouts per prompt when the dataloader expands them);
    `batches_per_epoch` draws make an epoch."""

    def __init__(
        self,
        draws: PacedDraws,
        index_of: Mapping[str, int],
        *,
        batches_per_epoch: int,
        repeat: int = 1,
    ) -> None:
        if batches_per_epoch < 1:
            raise ValueError("batches_per_epoch must be >= 1")
        self.draws = draws
        self.index_of = index_of
        self.batches_per_epoch = batches_per_epoch
        self.repeat = repeat
        self.next_draw = 0  # the draw being consumed (or the next one)
        self.offset = 0  # indices of that draw already yielded

    @classmethod
    def for_dataset(
        cls,
        client: PacedClient | str,
        run: str,
        dataset: Any,
        *,
        size: int,
        problem_id_column: str = "problem_id",
        seed: int = 0,
        mode: str = "proportional",
        fill: str | None = FILL,
        repeat: int = 1,
        leases: bool = True,
        key_prefix: str | None = None,
    ) -> PacedStatefulSampler:
        """Index a dataset by its problem id column (rows indexable as mappings, or a
        `datasets.Dataset` / pandas frame with that column)."""
        ids = _column(dataset, problem_id_column)
        draws = PacedDraws(
            client,
            run,
            size,
            seed=seed,
            mode=mode,
            fill=fill,
            skip_leased=leases,
            lease_ttl_s=600.0 if leases else None,
            key_prefix=key_prefix,
        )
        index_of = {str(pid): i for i, pid in enumerate(ids)}
        return cls(draws, index_of, batches_per_epoch=max(1, len(ids) // size), repeat=repeat)

    @property
    def draw_length(self) -> int:
        return self.draws.size * self.repeat

    def __len__(self) -> int:
        return self.batches_per_epoch * self.draw_length

    def __iter__(self):
        if self.offset >= self.draw_length:  # saved right after a draw's last index
            self.next_draw, self.offset = self.next_draw + 1, 0
        end = (self.next_draw // self.batches_per_epoch + 1) * self.batches_per_epoch
        while self.next_draw < end:
            indices = self._indices(self.next_draw)
            for position in range(self.offset, len(indices)):
                self.offset = position + 1  # counted before the caller sees it
                yield indices[position]
            self.next_draw, self.offset = self.next_draw + 1, 0

    def _indices(self, draw_index: int) -> list[int]:
        batch = self.draws.draw(draw_index)
        if len(batch.items) != self.draws.size:
            raise RuntimeError(
                f"paced returned {len(batch.items)} problems for a draw of {self.draws.size}"
            )
        return [self.index_of[item.problem_id] for item in batch.items for _ in range(self.repeat)]

    def state_dict(self) -> dict[str, int]:
        return {"next_draw": self.next_draw, "offset": self.offset}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if state.get("next_draw", -1) < 0 or state.get("offset", -1) < 0:
            raise ValueError(f"not a PacedStatefulSampler state: {dict(state)!r}")
        self.next_draw, self.offset = int(state["next_draw"]), int(state["offset"])


def _column(dataset: Any, name: str) -> Sequence[Any]:
    try:
        return list(dataset[name])  # datasets.Dataset, pandas, dict of lists
    except (KeyError, TypeError, IndexError):
        return [dataset[i][name] for i in range(len(dataset))]

"""PACED inside TRL (checked against trl 1.16): GRPOTrainer, DistillationTrainer, SFTTrainer.

    paced = PacedCurriculum("http://127.0.0.1:8000", run="run1", seed=0)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=paced.reward(accuracy),     # posts k of n per problem at global_step
        args=GRPOConfig(..., scale_rewards="none"),
        train_dataset=dataset,                   # with a "problem_id" column
    )
    paced.attach(trainer)                        # PACED draws replace TRL's RepeatSampler
    paced.gate(trainer)                          # optional: zero-variance groups refilled
    trainer.train()

- The sampler keeps `trl.trainer.utils.RepeatSampler`'s layout: per draw, `batch_size`
  distinct prompts, each repeated `mini_repeat_count` times, the block repeated
  `repeat_count` times. Every rank asks paced for draw i under one draw key, so all ranks
  get the same prompts whatever another rank posted meanwhile; accelerate then hands each
  rank its slice, as with RepeatSampler.
- Loss weighting. GRPO: with `weight_rewards=True` each reward is multiplied by
  loss_weight / mean(loss_weight) of its draw, which scales the group advantage when
  `scale_rewards="none"` (the group's std normalisation would cancel it otherwise).
  DistillationTrainer: `PacedDistillationTrainer` weights each sample's divergence.
  Never both with a proportional draw: there the weighting is already in the sampling.
- Distillation / SFT have no reward: `estimation_callback` rolls out the rollout queue with
  the current model every few steps, grades with a verifier and posts the outcomes.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch.utils.data import Sampler
from trl import DistillationTrainer, GRPOTrainer

from trainer_client.client import PacedClient
from trainer_client.integrations.draws import (
    FILL,
    PacedDraws,
    as_client,
    loss_scales,
    post_group_outcomes,
)
from trainer_client.integrations.trl_callbacks import PacedEstimationCallback
from trainer_client.integrations.trl_distillation import PacedDistillationTrainer
from trainer_client.integrations.trl_gate import GRPOGate
from trainer_client.trainer.gate import ZeroVarianceGate

__all__ = [
    "GRPOGate",
    "PacedCurriculum",
    "PacedDistillationTrainer",
    "PacedEstimationCallback",
    "PacedReward",
    "PacedSampler",
]


class PacedSampler(Sampler[int]):
    """Dataset indices in RepeatSampler's layout, the prompts chosen by PACED draws."""

    def __init__(
        self,
        draws: PacedDraws,
        index_of: Mapping[str, int],
        *,
        mini_repeat_count: int = 1,
        repeat_count: int = 1,
        num_batches: int,
        scales: dict[str, float] | None = None,
    ) -> None:
        self.draws, self.index_of, self.num_batches = draws, index_of, num_batches
        self.mini_repeat_count, self.repeat_count = mini_repeat_count, repeat_count
        self.scales = {} if scales is None else scales
        self.next_draw = 0  # draws continue across epochs: each one is a new step

    def __len__(self) -> int:
        return self.num_batches * self.draws.size * self.mini_repeat_count * self.repeat_count

    def __iter__(self):
        for _ in range(self.num_batches):
            indices = self._indices(self.draws.draw(self.next_draw))
            self.next_draw += 1
            for _ in range(self.repeat_count):
                for index in indices:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def _indices(self, batch) -> list[int]:
        if len(batch.items) != self.draws.size:
            raise RuntimeError(
                f"paced returned {len(batch.items)} problems for a batch of {self.draws.size}: "
                "the dataset is too small for this batch (with skip_leased, a prefetching "
                "dataloader holds two batches at once), or fill is off"
            )
        self.scales.update(loss_scales(batch.items))
        missing = [item.problem_id for item in batch.items if item.problem_id not in self.index_of]
        if missing:
            raise KeyError(
                f"paced served problems the training dataset does not have: {missing[:5]} "
                "(upload the same problems, with their ids in the problem_id column)"
            )
        return [self.index_of[item.problem_id] for item in batch.items]


def repeat_layout(trainer: Any) -> tuple[int, int, int]:
    """(distinct prompts per draw, mini_repeat_count, repeat_count) of the trainer's sampler."""
    args = trainer.args
    if isinstance(trainer, GRPOTrainer):
        # GRPOConfig fills both in its __post_init__ (None only before).
        generations = trainer.num_generations
        assert generations and args.generation_batch_size, "GRPOConfig has not been set up"
        size = args.generation_batch_size // generations
        return size, generations, int(trainer.num_iterations * args.steps_per_generation)
    processes = trainer.accelerator.num_processes
    if isinstance(trainer, DistillationTrainer):
        accumulation = args.gradient_accumulation_steps
        return args.per_device_train_batch_size * processes * accumulation, 1, accumulation
    # Trainer / SFTTrainer: one draw per micro-batch across all processes.
    return args.per_device_train_batch_size * processes, 1, 1


class PacedCurriculum:
    """One PACED run wired into a TRL trainer: sampler, reward wrapper, estimation callback."""

    def __init__(
        self,
        client: PacedClient | str,
        run: str,
        *,
        seed: int = 0,
        mode: str = "proportional",
        fill: str | None = FILL,
        skip_leased: bool | None = None,
        lease_ttl_s: float | None = 600.0,
        key_prefix: str | None = None,
        problem_id_column: str = "problem_id",
        success_threshold: float = 1.0,
        weight_rewards: bool = False,
    ) -> None:
        self.client, self.run, self.seed = as_client(client), run, seed
        # How draws are made (PacedDraws' options); skip_leased None: see draws().
        self.mode, self.fill, self.skip_leased, self.lease_ttl_s = (
            mode,
            fill,
            skip_leased,
            lease_ttl_s,
        )
        self.key_prefix = key_prefix or f"{run}/seed{seed}"
        self.problem_id_column = problem_id_column
        self.success_threshold, self.weight_rewards = success_threshold, weight_rewards
        self.scales: dict[str, float] = {}  # problem id -> loss scale of its latest draw
        self.sampler: PacedSampler | None = None

    def draws(self, size: int, *, leases: bool = True) -> PacedDraws:
        """leases: lease what is drawn and skip leased problems (skip_leased=None: do so
        exactly when the trainer grades its own draws, as GRPO does)."""
        skip = leases if self.skip_leased is None else self.skip_leased
        return PacedDraws(
            self.client,
            self.run,
            size,
            seed=self.seed,
            mode=self.mode,
            fill=self.fill,
            skip_leased=skip,
            lease_ttl_s=self.lease_ttl_s if skip else None,
            key_prefix=self.key_prefix,
        )

    def sampler_for(self, trainer, dataset=None) -> PacedSampler:
        dataset = trainer.train_dataset if dataset is None else dataset
        # Ids come from the trainer's own dataset: the one handed to the sampler may have had
        # its unused columns (problem_id among them) removed; the row order is the same.
        ids = trainer.train_dataset[self.problem_id_column]
        index_of = {str(pid): i for i, pid in enumerate(ids)}
        size, mini, repeat = repeat_layout(trainer)
        # Only GRPO grades what it draws (through the reward wrapper): a lease taken by a
        # distillation or SFT draw would hold until it expired and keep the estimation
        # callback off those problems.
        self.sampler = PacedSampler(
            self.draws(size, leases=isinstance(trainer, GRPOTrainer)),
            index_of,
            mini_repeat_count=mini,
            repeat_count=repeat,
            num_batches=max(1, len(dataset) // size),
            scales=self.scales,
        )
        return self.sampler

    def attach(self, trainer):
        """Make the trainer draw its prompts from PACED (the `_get_train_sampler` hook)."""
        if isinstance(trainer, GRPOTrainer) and self.weight_rewards:
            if getattr(trainer.args, "scale_rewards", "none") not in ("none", False):
                raise ValueError(
                    "weight_rewards needs GRPOConfig(scale_rewards='none'): the group's std "
                    "normalisation would cancel the weight"
                )
        if isinstance(trainer, PacedDistillationTrainer):
            trainer.paced_scales = self.scales
            trainer.paced_problem_id_column = self.problem_id_column
        curriculum = self

        def _get_train_sampler(self, dataset=None):
            return curriculum.sampler_for(self, dataset)

        trainer._get_train_sampler = types.MethodType(_get_train_sampler, trainer)
        return trainer

    def gate(self, trainer: GRPOTrainer, *, max_groups: int | None = None) -> GRPOGate:
        """Drop GRPO's zero-variance groups and refill them from paced, at most `max_groups`
        groups rolled out per generation batch (default 3x its prompts): trl_gate.py."""
        size = repeat_layout(trainer)[0]
        skip = True if self.skip_leased is None else self.skip_leased
        gate = ZeroVarianceGate(
            self.client,
            self.run,
            size=size,
            max_groups=max_groups,
            mode=self.mode,
            fill=self.fill,
            skip_leased=skip,
            seed=self.seed,
            key_prefix=self.key_prefix,
            # PacedReward posts every scored group (refills too); else the gate does.
            post=not any(isinstance(f, PacedReward) for f in trainer.reward_funcs),
        )
        return GRPOGate(trainer, self, gate)

    def reward(self, reward_fn: Callable[..., Sequence[float | None]]) -> PacedReward:
        return PacedReward(self, reward_fn)

    def estimation_callback(self, verifier: Callable[[str, str | None], bool], **kwargs):
        return PacedEstimationCallback(self, verifier, **kwargs)


class PacedReward:
    """A GRPO reward function that also posts its verdicts to PACED.

    Calls `reward_fn` with TRL's arguments, counts a completion as passed when its reward is
    >= success_threshold, groups the completions by the problem_id column and posts k of n
    per problem at trainer_state.global_step (each rank posts its own completions; the key
    is per step, rank and content, so a retry or a duplicated call counts once)."""

    def __init__(self, curriculum: PacedCurriculum, reward_fn: Callable[..., Sequence]) -> None:
        self.curriculum = curriculum
        self.reward_fn = reward_fn
        # TRL names reward columns after __name__ (callable objects have none by default).
        self.__name__ = getattr(reward_fn, "__name__", type(reward_fn).__name__)
        self.posted: list[list[dict[str, Any]]] = []  # what this process posted, per call

    def __call__(self, prompts, completions, **kwargs) -> list[float | None]:
        rewards = list(self.reward_fn(prompts=prompts, completions=completions, **kwargs))
        curriculum = self.curriculum
        problem_ids = [str(p) for p in kwargs[curriculum.problem_id_column]]
        state = kwargs.get("trainer_state")
        step = None if state is None else int(state.global_step)
        passed = [r is not None and r >= curriculum.success_threshold for r in rewards]
        self.posted.append(
            post_group_outcomes(
                curriculum.client,
                curriculum.run,
                problem_ids,
                passed,
                step,
                key_prefix=curriculum.key_prefix,
            )
        )
        if not curriculum.weight_rewards:
            return rewards
        scales = curriculum.scales
        return [
            None if r is None else r * scales.get(pid, 1.0)
            for r, pid in zip(rewards, problem_ids, strict=True)
        ]

"""The zero-variance gate inside TRL's GRPOTrainer (checked against trl 1.16).

TRL has no dynamic sampling (huggingface/trl #3708): a generation batch whose groups all
scored alike trains on nothing, and only `frac_reward_zero_std` says so. With the gate:

    paced = PacedCurriculum(url, run="run1")
    trainer = GRPOTrainer(model=..., reward_funcs=paced.reward(accuracy), args=..., ...)
    paced.attach(trainer)                  # the first batch of each step: paced's draw
    paced.gate(trainer, max_groups=3 * prompts_per_generation)
    trainer.train()

Each generation batch is generated and scored by TRL itself (`_generate_and_score_completions`);
the gate (trainer/gate.py) then drops the groups whose rewards are all equal (TRL's own test:
the group's reward std is 0), draws the same number of fresh problems from paced that this
step has not rolled out, has TRL generate and score those, and so on until the batch is full
or `max_groups` groups were rolled out. The kept groups' rows are merged into one batch of
the usual size; if the budget runs out first, zero-variance groups fill the rest (their
advantage is 0: they add no gradient) and `paced_gate/short_groups` counts them.

PacedReward posts every scored group's k of n (refills included: they are scored by the same
reward call), so the gate posts nothing itself unless no reward function is a PacedReward.
Per-step metrics go where TRL logs its own (`trainer._metrics`, averaged over the logging
window): paced_gate/generated_groups, kept_groups, zero_variance_share, refills, budget_hits,
short_groups. One process only for now: the refill rounds would have to be split over the
ranks in step, which this wrapper does not do (attaching it to a multi-process trainer raises).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from trainer_client.trainer.gate import GateResult, RolledGroup, ZeroVarianceGate, rolled_group

if TYPE_CHECKING:
    from trainer_client.integrations.trl import PacedCurriculum

LEFT_PADDED = ("prompt_ids", "prompt_mask")  # TRL pads prompts on the left
PAD_VALUES = {"completion_mask": 0, "prompt_mask": 0, "tool_mask": 1}  # ids: the pad token


@dataclass(frozen=True)
class Row:
    """A dataset row to roll out, with its problem id (the gate's item)."""

    problem_id: str
    row: dict[str, Any]


class GRPOGate:
    """Wraps one GRPOTrainer's generation step with a ZeroVarianceGate."""

    def __init__(self, trainer: Any, curriculum: PacedCurriculum, gate: ZeroVarianceGate) -> None:
        if trainer.accelerator.num_processes > 1:
            raise NotImplementedError("the GRPO gate runs in one process only (see the module)")
        self.trainer, self.curriculum, self.gate = trainer, curriculum, gate
        self.generations = int(trainer.num_generations)
        self.column = curriculum.problem_id_column
        ids = trainer.train_dataset[self.column]
        self.index_of = {str(pid): i for i, pid in enumerate(ids)}
        self.results: list[GateResult] = []  # one per generation batch
        self._generate_and_score = trainer._generate_and_score_completions
        self._calculate_rewards = trainer._calculate_rewards
        self._last_rewards: torch.Tensor | None = None
        trainer._calculate_rewards = self.calculate_rewards
        trainer._generate_and_score_completions = self.generate_and_score

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = self._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards
        return rewards

    def generate_and_score(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        trainer = self.trainer
        if not trainer.model.training:  # evaluation: as TRL does it
            return self._generate_and_score(inputs)
        g = self.generations
        if len(inputs) % g or len(inputs) // g != self.gate.size:
            raise RuntimeError(f"{len(inputs)} rows are not {self.gate.size} groups of {g}")
        keys = list(inputs[0])
        first = [Row(str(inputs[i][self.column]), inputs[i]) for i in range(0, len(inputs), g)]
        rounds: list[dict[str, Any]] = []

        def rollout(items: Sequence[Any]) -> list[RolledGroup]:
            rows = [self._row(item, keys) for item in items for _ in range(g)]
            rounds.append(self._generate_and_score(rows))
            return self._groups(len(rounds) - 1, items)

        result = self.gate.step(int(trainer.state.global_step), first, rollout)
        self.results.append(result)
        chosen = [group.ref for group in result.kept]
        chosen += [group.ref for group in result.dropped[: self.gate.size - len(chosen)]]
        for name, value in result.stats.metrics().items():
            trainer._metrics["train"][name].append(value)
        return merge_rounds(rounds, chosen, g, trainer._tokenizer.pad_token_id)

    def _row(self, item: Any, keys: list[str]) -> dict[str, Any]:
        if isinstance(item, Row):
            return item.row
        if item.problem_id not in self.index_of:
            raise KeyError(f"paced drew problem {item.problem_id!r}, not in the training dataset")
        row = self.trainer.train_dataset[self.index_of[item.problem_id]]
        return {key: row[key] for key in keys}

    def _groups(self, round_index: int, items: Sequence[Any]) -> list[RolledGroup]:
        """The round's groups, graded as TRL weighs the reward functions."""
        trainer = self.trainer
        per_func = self._last_rewards
        assert per_func is not None, "TRL scored nothing"
        weights = trainer.reward_weights.to(per_func.device)
        rewards = (per_func * weights.unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(per_func).all(dim=1)] = math.nan  # unscorable, as TRL marks them
        grouped = rewards.view(-1, self.generations).tolist()
        threshold = self.curriculum.success_threshold
        return [
            rolled_group(item.problem_id, values, threshold, ref=(round_index, index))
            for index, (item, values) in enumerate(zip(items, grouped, strict=True))
        ]


def merge_rounds(
    rounds: list[dict[str, Any]], chosen: list[tuple[int, int]], generations: int, pad_id: int
) -> dict[str, Any]:
    """One generation batch from the chosen groups (round, group index) of several rounds:
    every per-row tensor re-padded to the widest round, num_items_in_batch recounted."""
    first = rounds[0]
    if len(rounds) == 1 and chosen == [(0, i) for i in range(len(chosen))]:
        return first
    merged: dict[str, Any] = {}
    for key, value in first.items():
        if key == "num_items_in_batch":
            continue
        if not (isinstance(value, torch.Tensor) and value.dim() >= 1):
            raise NotImplementedError(f"the GRPO gate cannot merge {key!r} (multimodal inputs?)")
        parts = []
        for round_index, group in chosen:
            rows = slice(group * generations, (group + 1) * generations)
            parts.append(rounds[round_index][key][rows])
        merged[key] = _cat_padded(parts, key, pad_id)
    mask = merged["completion_mask"]
    if "tool_mask" in merged:
        mask = mask * merged["tool_mask"]
    merged["num_items_in_batch"] = mask.sum()
    return merged


def _cat_padded(parts: list[torch.Tensor], key: str, pad_id: int) -> torch.Tensor:
    if parts[0].dim() == 1:
        return torch.cat(parts)
    width = max(part.size(1) for part in parts)
    pad_value = PAD_VALUES.get(key, pad_id if key.endswith("_ids") else 0)
    padded = []
    for part in parts:
        missing = width - part.size(1)
        if missing:
            filler = part.new_full((part.size(0), missing, *part.shape[2:]), pad_value)
            pieces = [filler, part] if key in LEFT_PADDED else [part, filler]
            part = torch.cat(pieces, dim=1)
        padded.append(part)
    return torch.cat(padded)

"""NeMo-RL, as far as paced's adapter meets it, written here (NeMo-RL needs Python >= 3.13
and CUDA wheels: not installable on this machine).

Mirrors `nemo_rl.data.dataloader.MultipleDataloaderWrapper` and the checks of its unit tests
(tests/unit/data/test_multiple_dataloader.py): the custom function is loaded from its dotted
path and called as `fn(data_iterators, dataloaders, **records)` for every step; it returns
(batch, data_iterators); the batch must hold `expected_num_prompts` message logs; records set
with `set_records` reach the next call only. The datasets yield NeMo-RL's DatumSpec dicts
(message_log, extra_env_info, task_name, idx, loss_multiplier) and the loaders collate them as
`rl_collate_fn` does (one list per field); the GRPO step repeats each prompt
num_generations_per_prompt times (`repeat_interleave`) and adds `total_reward`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

FIELDS = ("message_log", "extra_env_info", "task_name", "idx", "loss_multiplier")


def get_method(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def rl_collate(datums: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: [datum[name] for datum in datums] for name in FIELDS}


def datum(task_name: str, idx: int, prompt: str, answer: str, **info: Any) -> dict[str, Any]:
    return {
        "message_log": [{"role": "user", "content": prompt}],
        "extra_env_info": {"ground_truth": answer, **info},
        "task_name": task_name,
        "idx": idx,
        "loss_multiplier": 1.0,
    }


def dataloaders(datasets: dict[str, list[dict[str, Any]]], batch_size: int) -> dict[str, Any]:
    return {
        task: StatefulDataLoader(rows, batch_size=batch_size, shuffle=True, collate_fn=rl_collate)
        for task, rows in datasets.items()
    }


class MultipleDataloaderWrapper:
    def __init__(self, expected_num_prompts: int, data_config: dict, loaders: dict) -> None:
        self.expected_num_prompts = expected_num_prompts
        self.dataloaders = loaders
        self.data_iterators = {task: iter(loader) for task, loader in loaders.items()}
        self.custom_dataloader_func = get_method(data_config["custom_dataloader"])
        self.records: dict[str, Any] = {}

    def __iter__(self) -> MultipleDataloaderWrapper:
        return self

    def __next__(self) -> dict[str, Any]:
        result, self.data_iterators = self.custom_dataloader_func(
            self.data_iterators, self.dataloaders, **self.records
        )
        assert len(result["message_log"]) == self.expected_num_prompts
        self.records = {}
        return result

    def set_records(self, records: dict) -> None:
        self.records.update(records)


def repeat_interleave(batch: dict[str, Any], n: int) -> dict[str, Any]:
    return {name: [value for value in column for _ in range(n)] for name, column in batch.items()}


def grpo_steps(
    loader: MultipleDataloaderWrapper,
    steps: int,
    generations: int,
    grade: Callable[[dict[str, Any], int], float],
    after_rewards: Callable[[dict[str, Any], int], None],
) -> list[dict[str, Any]]:
    """The sync GRPO loop around the dataloader: each step's batch, repeated, rewarded; then
    the line a paced user adds (`after_rewards`). Returns each step's repeated batch."""
    seen = []
    for step, batch in enumerate(loader):
        repeated = repeat_interleave(batch, generations)
        rewards = [grade(info, row) for row, info in enumerate(repeated["extra_env_info"])]
        repeated["total_reward"] = torch.tensor(rewards)
        after_rewards(repeated, step)
        seen.append(repeated)
        if step + 1 == steps:
            break
    return seen

"""The policy of bench/gate.py: the built arithmetic task's student, trained by GRPO on CPU.

K completions per problem sampled from the student (the bundled TransformersEngine,
seeded), graded by the task's exact checker (the last integer equals the answer). A step's
update is one on-policy GRPO step (so the PPO ratio is 1 and clipping never acts) with the
Dr. GRPO advantage r - mean(r) of the group: a zero-variance group has advantage 0 and adds
nothing to the gradient, but its tokens still count in the normaliser, as in TRL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from trainer_client.tasks.arithmetic.evaluation import evaluate
from trainer_client.tasks.arithmetic.problems import (
    Problem,
    is_correct,
    read_jsonl,
    reference_response,
)
from trainer_client.tasks.arithmetic.tokenizer import load_tokenizer
from trainer_client.trainer.engines.transformers_engine import TransformersEngine
from trainer_client.trainer.gate import RolledGroup, rolled_group

EXTRA_TOKENS = 4  # generation budget past the longest reference, as the task's evaluation


class StudentPolicy:
    def __init__(self, task_dir: Path, *, k: int, lr: float, seed: int, rows: int = 512) -> None:
        torch.manual_seed(seed)
        self.k, self.task_dir = k, task_dir
        self.tokenizer = load_tokenizer(task_dir / "tokenizer")
        self.model: Any = AutoModelForCausalLM.from_pretrained(
            task_dir / "student_init", local_files_only=True
        )
        # The engine samples from the very module being trained: no weight sync needed.
        self.engine = TransformersEngine(
            self.model, self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.0)
        self.problems = {p.id: p for p in read_jsonl(task_dir / "problems.jsonl")}
        self.eval_split = read_jsonl(task_dir / "eval.jsonl")
        self.seconds = {"rollout": 0.0, "train": 0.0}

    def rollout(self, items: Sequence[Any], seed: int) -> list[RolledGroup]:
        """K graded completions of each item's problem; ref: (problem, completions)."""
        started = time.perf_counter()
        problems = [self.problems[item.problem_id] for item in items]
        budget = max(len(reference_response(p)) for p in problems) + EXTRA_TOKENS
        groups = self.engine.generate(
            [p.prompt for p in problems], self.k, seed=seed, max_new_tokens=budget
        )
        rolled = [
            rolled_group(p.id, [float(is_correct(p, c.text)) for c in group], ref=(p, group))
            for p, group in zip(problems, groups, strict=True)
        ]
        self.seconds["rollout"] += time.perf_counter() - started
        return rolled

    def train(self, groups: Sequence[RolledGroup]) -> float:
        """One GRPO step on these groups; returns the loss."""
        if not groups:
            return 0.0
        started = time.perf_counter()
        sequences, starts, advantages = [], [], []
        for group in groups:
            problem, completions = group.ref
            prompt = self._prompt_ids(problem)
            mean = sum(group.rewards) / len(group.rewards)
            for reward, completion in zip(group.rewards, completions, strict=True):
                sequences.append(prompt + list(completion.token_ids))
                starts.append(len(prompt))
                advantages.append(reward - mean)
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            attention[row, : len(sequence)] = 1
        self.model.train()
        logits = self.model(input_ids=ids, attention_mask=attention).logits[:, :-1]
        logps = torch.log_softmax(logits.float(), dim=-1)
        token_logps = logps.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        positions = torch.arange(1, width).unsqueeze(0)
        completion_mask = (positions >= torch.tensor(starts).unsqueeze(1)) & (attention[:, 1:] > 0)
        weights = torch.tensor(advantages).unsqueeze(1) * completion_mask
        loss = -(token_logps * weights).sum() / completion_mask.sum().clamp(min=1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.seconds["train"] += time.perf_counter() - started
        return float(loss.detach())

    def accuracy(self) -> dict[str, Any]:
        """Greedy accuracy on the task's held-out evaluation split (per level)."""
        return evaluate(self.model.eval(), self.tokenizer, self.eval_split)

    def _prompt_ids(self, problem: Problem) -> list[int]:
        encoded = self.tokenizer(problem.prompt, add_special_tokens=True)
        return list(encoded["input_ids"])

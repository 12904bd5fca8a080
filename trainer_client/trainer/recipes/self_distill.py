"""Recipe: PACED on-policy self-distillation (`make demo-real`, the SmolLM2 smoke test).

The student samples one fresh response per drawn problem; the teacher is the frozen initial
model shown the answer (trainer/self_teacher.py); the loss is the PACED-weighted reverse KL
on the student's own tokens. Steps run on the shared loop (trainer/loop.py) with batches
from the shared drawer (trainer/draws.py):

    recipe = SelfDistillation(student, teacher, tokenizer, engine, optimizer, seed=0, ...)
    run_steps(recipe, client, run, pool, scheme="paced", batch_size=8, seed=0,
              steps=range(1, 11))

- scheme "paced": batches drawn by the service ∝ w = p(1-p), loss weight 1; "paced-loss":
  uniform draws, loss weight w / mean w;
- scheme "local": the unweighted baseline, uniform from the pool with every weight 1 and no
  service call (unweighted self-distillation needs no pass rates).
A 409 (nothing eligible: every problem mastered or intractable) is a step with nothing to
learn: it trains on nothing, and counts as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trainer_client.client import PacedClient
from trainer_client.trainer.accounting import StepResult
from trainer_client.trainer.draws import BatchDrawer, DrawnBatch
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.feed import BatchFeed
from trainer_client.trainer.loop import OnStep, train_loop
from trainer_client.trainer.seeds import derive_seed
from trainer_client.trainer.self_teacher import make_example, self_distill_loss, student_prompt

LOSS_KIND = "rkl"  # reverse KL(student || privileged self-teacher)


class SelfDistillation:
    """One on-policy self-distillation step on a drawn batch (one process)."""

    def __init__(
        self,
        student: torch.nn.Module,
        teacher: torch.nn.Module,
        tokenizer: Any,
        engine: RolloutEngine,
        optimizer: torch.optim.Optimizer,
        *,
        seed: int,
        temperature: float,
        max_new_tokens: int,
        max_grad_norm: float = 1.0,
    ) -> None:
        self.student, self.teacher, self.tokenizer = student, teacher, tokenizer
        self.engine, self.optimizer = engine, optimizer
        self.seed, self.temperature, self.max_new_tokens = seed, temperature, max_new_tokens
        self.max_grad_norm = max_grad_norm

    def step(self, step: int, drawn: DrawnBatch) -> StepResult:
        """Sample one response per trained problem from the current student, take one step."""
        trained = drawn.trained  # zero-weight items add nothing: not even a sample
        if not trained:
            return StepResult(step, drawn, LOSS_KIND)
        groups = self.engine.generate(
            [student_prompt(self.tokenizer, item.prompt) for item in trained],
            1,
            seed=derive_seed(self.seed, step, "on-policy"),
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
        )
        examples = [
            make_example(
                self.tokenizer, item.prompt, item.answer or "", g[0].token_ids, item.loss_weight
            )
            for item, g in zip(trained, groups, strict=True)
            if g[0].token_ids  # an empty response has no token to score
        ]
        if not examples:
            return StepResult(step, drawn, LOSS_KIND)
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        # N = the drawn batch size (sequence reduction): a batch with few weighted problems
        # takes a proportionally smaller step, as the paper's per-problem weighting intends.
        loss = self_distill_loss(
            self.student,
            self.teacher,
            examples,
            pad_id=self.tokenizer.pad_token_id,
            reduction="sequence",
            normalizer=float(len(drawn.items)),
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.student.eval()
        response_tokens = sum(len(e.response_ids) for e in examples)
        tokens = response_tokens + sum(len(e.student_prompt_ids) for e in examples)
        return StepResult(
            step, drawn, LOSS_KIND, float(loss.detach()), len(examples), response_tokens, tokens
        )


def run_steps(
    recipe: SelfDistillation,
    client: PacedClient,
    run: str,
    pool: Sequence[Any],
    *,
    scheme: str,
    batch_size: int,
    seed: int,
    steps: range,
    on_step: OnStep | None = None,
    label: str = "self-distill",
) -> None:
    """`steps` of the recipe on the shared loop, batch i drawn under `scheme` (no refresh,
    no fallback: the measurements around the steps are the caller's)."""
    drawer = BatchDrawer(client, run, scheme, pool, size=batch_size, seed=seed, fallback=False)
    feed = BatchFeed(drawer, client, run, steps=steps.stop)
    try:
        train_loop(recipe, feed, steps, on_step=on_step, label=label)
    finally:
        feed.close()

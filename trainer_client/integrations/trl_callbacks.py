"""The estimation callback for TRL trainers that produce no rewards (distillation, SFT):
rollouts of the rollout queue with the current model, graded and posted to PACED."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback

from trainer_client.integrations.draws import distributed_rank, post_group_outcomes

if TYPE_CHECKING:
    from trainer_client.integrations.trl import PacedCurriculum


class PacedEstimationCallback(TrainerCallback):
    """Every `every_n_steps` steps (and before training): claim `limit` problems from the
    rollout queue, sample `k` completions of each from the current model, grade them with
    `verifier(completion, answer)` and post the outcomes — the pass rates distillation and
    SFT do not produce themselves."""

    def __init__(
        self,
        curriculum: PacedCurriculum,
        verifier: Callable[[str, str | None], bool],
        *,
        k: int = 4,
        limit: int = 8,
        every_n_steps: int = 1,
        at_start: bool = True,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        lease_s: float = 600.0,
        format_prompt: Callable[[str], str] | None = None,
    ) -> None:
        self.curriculum, self.verifier = curriculum, verifier
        self.k, self.limit, self.lease_s = k, limit, lease_s
        self.every_n_steps, self.at_start = every_n_steps, at_start
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.format_prompt = format_prompt or (lambda prompt: prompt)
        self.posted: list[list[dict[str, Any]]] = []

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.at_start:
            self.estimate(model, processing_class, state.global_step)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every_n_steps == 0:
            self.estimate(model, processing_class, state.global_step)

    @torch.no_grad()
    def estimate(self, model, tokenizer, step: int) -> list[dict[str, Any]]:
        curriculum = self.curriculum
        claimer = f"{curriculum.key_prefix}:estimator:rank{distributed_rank()}"
        queue = curriculum.client.rollout_queue(
            curriculum.run, self.limit, claimer=claimer, lease_s=self.lease_s
        )
        if not queue.items:
            return []
        prompts = [self.format_prompt(item.prompt) for item in queue.items]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
        was_training = model.training
        model.eval()
        try:
            output = model.generate(
                **encoded,
                do_sample=True,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                num_return_sequences=self.k,
                pad_token_id=tokenizer.pad_token_id,
            )
        finally:
            model.train(was_training)
        texts = tokenizer.batch_decode(
            output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True
        )
        # generate() returns the k samples of prompt j at rows j*k .. j*k + k - 1.
        problem_ids = [item.problem_id for item in queue.items for _ in range(self.k)]
        answers = [item.answer for item in queue.items for _ in range(self.k)]
        passed = [self.verifier(text, answer) for text, answer in zip(texts, answers, strict=True)]
        outcomes = post_group_outcomes(
            curriculum.client,
            curriculum.run,
            problem_ids,
            passed,
            step,
            key_prefix=f"{curriculum.key_prefix}:estimate",
        )
        self.posted.append(outcomes)
        return outcomes

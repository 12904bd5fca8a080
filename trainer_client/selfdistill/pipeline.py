"""The pieces of a PACED self-distillation run on a real model, shared by the demo and CI.

- ``register``: upload the word problems to the service and create the run (window
  "latest": a re-estimated problem's pass rate is its newest K-rollout round).
- ``estimate_pool``: K rollouts per problem with the current student, graded by math-verify,
  posted as outcomes (trainer.estimate does the work).
- ``accuracy``: greedy accuracy on held-out problems (one completion each).
- ``self_distill_step``: draw a batch from the service, sample one fresh response per
  problem from the *current* student (on-policy), and take one optimizer step on the
  PACED-weighted reverse KL to the frozen, answer-aware self-teacher.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from trainer_client.errors import Conflict
from trainer_client.selfdistill.self_teacher import make_example, self_distill_loss, student_prompt
from trainer_client.selfdistill.word_problems import WordProblem
from trainer_client.trainer.estimate import EstimateResult, estimate, post_outcomes
from trainer_client.trainer.seeds import derive_seed


@dataclass(frozen=True)
class RolloutItem:
    """What trainer.estimate needs: id, the rendered chat prompt, the gold answer."""

    problem_id: str
    prompt: str
    answer: str


def rollout_items(tokenizer: Any, problems: Sequence[WordProblem]) -> list[RolloutItem]:
    return [
        RolloutItem(p.problem_id, student_prompt(tokenizer, p.prompt_text), p.answer)
        for p in problems
    ]


def register(client: Any, *, dataset: str, run: str, problems: Sequence[WordProblem]) -> None:
    """Upload the problems (the user text, answer and family/level as metadata); create the run."""
    client.create_dataset(dataset, "procedural word problems (trainer_client.selfdistill)")
    client.upsert_problems(
        dataset,
        [
            {
                "id": p.problem_id,
                "prompt": p.prompt_text,
                "answer": p.answer,
                "metadata": {"family": p.family, "level": p.level},
            }
            for p in problems
        ],
    )
    client.create_run(run, dataset, estimator={"window": "latest"})


def estimate_pool(
    *,
    client: Any,
    run: str,
    engine: Any,
    verifier: Any,
    items: Sequence[RolloutItem],
    k: int,
    seed: int,
    step: int,
    temperature: float,
    max_new_tokens: int,
    rows_per_call: int = 32,
) -> EstimateResult:
    """K rollouts per problem, graded and posted at `step`."""
    result = estimate(
        engine=engine,
        verifier=verifier,
        items=items,
        k=k,
        seed=seed,
        step=step,
        temperature=temperature,
        budget=lambda _id: max_new_tokens,
        rows_per_call=rows_per_call,
    )
    post_outcomes(client, run, step, result.outcomes)
    return result


def accuracy(
    engine: Any, verifier: Any, items: Sequence[RolloutItem], *, max_new_tokens: int
) -> float:
    """Greedy accuracy (fraction of problems whose one greedy answer math-verify accepts)."""
    if not items:
        return float("nan")
    groups = engine.generate(
        [item.prompt for item in items], 1, seed=0, max_new_tokens=max_new_tokens, temperature=0
    )
    grades = verifier.grade([g[0].text for g in groups], [item.answer for item in items])
    return sum(grades) / len(items)


@dataclass
class StepResult:
    loss: float
    problems: int
    response_tokens: int
    mean_loss_weight: float
    seconds: float


def self_distill_step(
    *,
    client: Any,
    run: str,
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    tokenizer: Any,
    engine: Any,
    optimizer: torch.optim.Optimizer,
    problems: dict[str, WordProblem],
    batch_size: int,
    seed: int,
    step: int,
    temperature: float,
    max_new_tokens: int,
    mode: Literal["proportional", "uniform"] = "proportional",
    max_grad_norm: float = 1.0,
) -> StepResult | None:
    """One on-policy step; None when the service has no problem to draw (all weights 0)."""
    started = time.perf_counter()
    try:
        batch = client.batch(run, batch_size, seed=derive_seed(seed, step, "batch"), mode=mode)
    except Conflict:
        # 409: every problem is mastered or intractable (all weights 0); nothing to learn.
        return None
    items = [item for item in batch.items if item.loss_weight > 0]
    if not items:
        return None
    chosen = [problems[item.problem_id] for item in items]
    groups = engine.generate(
        [student_prompt(tokenizer, p.prompt_text) for p in chosen],
        1,
        seed=derive_seed(seed, step, "on-policy"),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )
    examples = [
        make_example(tokenizer, p.prompt_text, p.answer, g[0].token_ids, item.loss_weight)
        for p, g, item in zip(chosen, groups, items, strict=True)
        if g[0].token_ids
    ]
    if not examples:
        return None
    student.train()
    optimizer.zero_grad(set_to_none=True)
    # N = the drawn batch size (sequence reduction): a batch with few weighted problems takes
    # a proportionally smaller step, as the paper's per-problem weighting intends.
    loss = self_distill_loss(
        student,
        teacher,
        examples,
        pad_id=tokenizer.pad_token_id,
        reduction="sequence",
        normalizer=float(len(batch.items)),
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), max_grad_norm)
    optimizer.step()
    student.eval()
    return StepResult(
        loss=float(loss.detach()),
        problems=len(examples),
        response_tokens=sum(len(e.response_ids) for e in examples),
        mean_loss_weight=sum(e.loss_weight for e in examples) / len(examples),
        seconds=time.perf_counter() - started,
    )

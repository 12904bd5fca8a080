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

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from trainer_client.errors import Conflict
from trainer_client.tasks.word_problems.problems import WordProblem
from trainer_client.tasks.word_problems.self_teacher import (
    make_example,
    self_distill_loss,
    student_prompt,
)
from trainer_client.trainer.estimate import EstimateResult, estimate
from trainer_client.trainer.outcomes import post_outcomes
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
    client.create_dataset(dataset, "procedural word problems (trainer_client.tasks.word_problems)")
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
    post_outcomes(client, run, result.outcomes, step=step)
    return result


@dataclass
class ResponseLengths:
    """How long the responses were and how many hit the token budget (cut before the end)."""

    responses: int = 0
    tokens: int = 0
    truncated: int = 0

    def add(self, token_ids: Sequence[int], max_new_tokens: int, eos_ids: Sequence[int]) -> None:
        self.responses += 1
        self.tokens += len(token_ids)
        # Cut by the budget: as long as allowed and not ended by end-of-sequence.
        if len(token_ids) >= max_new_tokens and (not token_ids or token_ids[-1] not in eos_ids):
            self.truncated += 1

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.responses if self.responses else float("nan")

    @property
    def truncated_fraction(self) -> float:
        return self.truncated / self.responses if self.responses else float("nan")


class LengthRecordingEngine:
    """Wraps a rollout engine and records the length of every completion it returns.

    trainer.estimate only returns pass rates; wrapping the engine measures the responses
    behind them (truncation makes an answer wrong whatever the model knew) without
    changing estimate's interface.
    """

    def __init__(self, engine: Any, eos_ids: Sequence[int]) -> None:
        self.engine = engine
        self.eos_ids = list(eos_ids)
        self.lengths = ResponseLengths()

    def take_lengths(self) -> ResponseLengths:
        """The lengths recorded since the last call (and start a new record)."""
        lengths, self.lengths = self.lengths, ResponseLengths()
        return lengths

    def generate(self, prompts: list[str], k: int, **kwargs: Any) -> list[list[Any]]:
        groups = self.engine.generate(prompts, k, **kwargs)
        for group in groups:
            for completion in group:
                self.lengths.add(completion.token_ids, kwargs["max_new_tokens"], self.eos_ids)
        return groups

    def load_weights(self, model_or_state_dict: Any) -> None:
        self.engine.load_weights(model_or_state_dict)


def eos_ids(engine: Any, tokenizer: Any) -> list[int]:
    """The engine's end-of-sequence ids where it has them, else the tokenizer's."""
    ids = getattr(engine, "eos_token_ids", None)
    return list(ids) if ids else [int(tokenizer.eos_token_id)]


@dataclass
class GradedSample:
    question: str
    answer: str
    response: str
    token_ids: list[int]
    correct: bool


@dataclass
class Accuracy:
    accuracy: float
    lengths: ResponseLengths
    samples: list[GradedSample]


def accuracy(
    engine: Any,
    verifier: Any,
    item_sets: Sequence[Sequence[RolloutItem]],
    *,
    max_new_tokens: int,
    eos: Sequence[int] = (),
    question_sets: Sequence[Sequence[str]] | None = None,
) -> list[Accuracy]:
    """Greedy accuracy per set (fraction of problems whose one greedy answer math-verify
    accepts), with the responses' lengths and every graded response (for reading by eye).

    All sets go through one generate call: on CPU a batch costs about as much as its
    longest response, so one batch of 2n is much cheaper than two of n.
    """
    items = [item for group in item_sets for item in group]
    questions = (
        [q for group in question_sets for q in group]
        if question_sets is not None
        else [item.prompt for item in items]
    )
    groups = (
        engine.generate(
            [item.prompt for item in items], 1, seed=0, max_new_tokens=max_new_tokens, temperature=0
        )
        if items
        else []
    )
    grades = verifier.grade([g[0].text for g in groups], [item.answer for item in items])
    samples = [
        GradedSample(q, item.answer, g[0].text, list(g[0].token_ids), ok)
        for q, item, g, ok in zip(questions, items, groups, grades, strict=True)
    ]
    results, start = [], 0
    for group in item_sets:
        own = samples[start : start + len(group)]
        start += len(group)
        lengths = ResponseLengths()
        for sample in own:
            lengths.add(sample.token_ids, max_new_tokens, eos)
        score = sum(s.correct for s in own) / len(own) if own else float("nan")
        results.append(Accuracy(score, lengths, own))
    return results


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
    """One PACED on-policy step; None when the service has nothing to draw (all weights 0)."""
    started = time.perf_counter()
    try:
        batch = client.batch(run, batch_size, seed=derive_seed(seed, step, "batch"), mode=mode)
    except Conflict:
        # 409: every problem is mastered or intractable (all weights 0); nothing to learn.
        return None
    items = [item for item in batch.items if item.loss_weight > 0]
    if not items:
        return None
    return _distill(
        student=student,
        teacher=teacher,
        tokenizer=tokenizer,
        engine=engine,
        optimizer=optimizer,
        chosen=[(problems[item.problem_id], item.loss_weight) for item in items],
        drawn=len(batch.items),
        seed=seed,
        step=step,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        max_grad_norm=max_grad_norm,
        started=started,
    )


def uniform_distill_step(
    *,
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    tokenizer: Any,
    engine: Any,
    optimizer: torch.optim.Optimizer,
    problems: Sequence[WordProblem],
    batch_size: int,
    seed: int,
    step: int,
    temperature: float,
    max_new_tokens: int,
    max_grad_norm: float = 1.0,
) -> StepResult | None:
    """The baseline: the same step with a uniform draw from the pool and every weight 1.

    No service call: unweighted self-distillation needs no pass rates. The draw is seeded
    from (seed, step), so two runs of the baseline draw the same problems.
    """
    started = time.perf_counter()
    rng = random.Random(derive_seed(seed, step, "uniform-batch"))
    drawn = rng.sample(list(problems), min(batch_size, len(problems)))
    return _distill(
        student=student,
        teacher=teacher,
        tokenizer=tokenizer,
        engine=engine,
        optimizer=optimizer,
        chosen=[(p, 1.0) for p in drawn],
        drawn=len(drawn),
        seed=seed,
        step=step,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        max_grad_norm=max_grad_norm,
        started=started,
    )


def _distill(
    *,
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    tokenizer: Any,
    engine: Any,
    optimizer: torch.optim.Optimizer,
    chosen: Sequence[tuple[WordProblem, float]],
    drawn: int,
    seed: int,
    step: int,
    temperature: float,
    max_new_tokens: int,
    max_grad_norm: float,
    started: float,
) -> StepResult | None:
    """Sample one response per chosen problem from the current student, take one step."""
    groups = engine.generate(
        [student_prompt(tokenizer, p.prompt_text) for p, _ in chosen],
        1,
        seed=derive_seed(seed, step, "on-policy"),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )
    examples = [
        make_example(tokenizer, p.prompt_text, p.answer, g[0].token_ids, weight)
        for (p, weight), g in zip(chosen, groups, strict=True)
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
        normalizer=float(drawn),
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

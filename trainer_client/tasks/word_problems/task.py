"""The word problems as a PACED task: their dataset and run on the service, the rendered
prompts rollouts sample from, and the greedy accuracy the demo reports.

- ``register``: upload the problems (with family and level as metadata) and create the run
  (window "latest": a re-estimated problem's pass rate is its newest K-rollout round);
- ``rollout_items``: what trainer.estimate rolls out: the chat-template prompt, the answer;
- ``accuracy``: greedy accuracy on held-out problems (one completion each), graded by the
  verifier, with the responses' lengths and every graded response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.tasks.word_problems.problems import WordProblem
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.engines.lengths import ResponseLengths
from trainer_client.trainer.self_teacher import student_prompt


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


def register(
    client: PacedClient, *, dataset: str, run: str, problems: Sequence[WordProblem]
) -> None:
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
    engine: RolloutEngine,
    verifier: Any,
    item_sets: Sequence[Sequence[RolloutItem]],
    *,
    max_new_tokens: int,
    eos: Sequence[int] = (),
    question_sets: Sequence[Sequence[str]] | None = None,
) -> list[Accuracy]:
    """Greedy accuracy per set (fraction of problems whose one greedy answer the verifier
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

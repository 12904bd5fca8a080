"""Procedurally generated grade-school word problems (no data set download).

A problem is a starting quantity followed by one to three changes (add, take away, multiply),
told in the words of a *family* (apples, a bus, a piggy bank; the held-out family is a
bakery). The difficulty knob ``level`` (1-4) sets the number of steps and the size of the
numbers:

    level 1: one step, numbers up to 10       level 3: two steps, numbers up to 60
    level 2: two steps, numbers up to 20      level 4: three steps (one multiplies), up to 60

Answers are non-negative integers (as text), graded on the model's free text by math-verify.
The same (seed, family, level, index) always gives the same problem.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

LEVELS = (1, 2, 3, 4)
_STEPS = {1: 1, 2: 2, 3: 2, 4: 3}
_MAX_VALUE = {1: 10, 2: 20, 3: 60, 4: 60}
# Short on purpose: "Think step by step" made this 135M student run past a 128-token budget
# on half its samples (a cut answer is graded wrong). "Answer: <n>" is an anchor math-verify
# extracts first ("answer" + colon + number).
INSTRUCTION = "Solve it in one or two short sentences, then write 'Answer: <number>'."


@dataclass(frozen=True)
class Family:
    """The words of one problem family; {n} is the number, {who} the subject."""

    start: str
    add: str
    take: str
    multiply: str  # {n} is the factor (2 or 3) spelled out
    question: str


# The words of each family (data, in families.json); "bakery" is held out: never trained
# on, it measures forgetting / transfer.
FAMILIES: dict[str, Family] = {
    name: Family(**words)
    for name, words in json.loads(
        (Path(__file__).parent / "families.json").read_text(encoding="utf-8")
    ).items()
}
TRAIN_FAMILIES = ("apples", "bus", "savings")
HELD_OUT_FAMILY = "bakery"
_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jon")
_FACTOR_WORDS = {2: "two", 3: "three"}


@dataclass(frozen=True)
class WordProblem:
    problem_id: str
    question: str
    answer: str
    family: str
    level: int

    @property
    def prompt_text(self) -> str:
        """The user message the student sees: the question and the answer format."""
        return f"{self.question}\n{INSTRUCTION}"

    # What a pool item has for the trainer (draws.BatchDrawer) and on the service.
    @property
    def id(self) -> str:
        return self.problem_id

    @property
    def prompt(self) -> str:
        return self.prompt_text


def make_problem(family: str, level: int, index: int, seed: int = 0) -> WordProblem:
    """One problem, deterministic in (seed, family, level, index)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    if index < 0:
        raise ValueError("index must be >= 0")
    words = FAMILIES[family]
    rng = random.Random(f"{seed}/{family}/{level}/{index}")
    who = rng.choice(_NAMES)
    top = _MAX_VALUE[level]
    value = rng.randint(2, top)
    sentences = [words.start.format(who=who, n=value)]
    steps = _STEPS[level]
    # Level 4 multiplies once (at a random step); the others add and take away.
    multiply_at = rng.randrange(steps) if level == 4 else -1
    for step in range(steps):
        if step == multiply_at:
            factor = rng.choice((2, 3))
            value *= factor
            sentences.append(words.multiply.format(who=who, n=_FACTOR_WORDS[factor]))
        elif value > 1 and rng.random() < 0.5:
            amount = rng.randint(1, min(top, value - 1))
            value -= amount
            sentences.append(words.take.format(who=who, n=amount))
        else:
            amount = rng.randint(1, top)
            value += amount
            sentences.append(words.add.format(who=who, n=amount))
    sentences.append(words.question.format(who=who))
    return WordProblem(
        problem_id=f"{family}-L{level}-{seed}-{index}",
        question=" ".join(sentences),
        answer=str(value),
        family=family,
        level=level,
    )


def make_pool(
    count: int,
    *,
    families: tuple[str, ...] = TRAIN_FAMILIES,
    levels: tuple[int, ...] = LEVELS,
    seed: int = 0,
    start_index: int = 0,
) -> list[WordProblem]:
    """`count` problems cycling through families x levels (so every mix is represented).

    Disjoint index ranges (start_index) give disjoint problems, e.g. train vs held-out eval.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    combos = [(family, level) for level in levels for family in families]
    problems = []
    for i in range(count):
        family, level = combos[i % len(combos)]
        problems.append(make_problem(family, level, start_index + i // len(combos), seed))
    return problems

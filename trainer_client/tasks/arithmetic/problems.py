"""Synthetic problem family for the built-in CPU demo.

Main skill ("add"): addition of two numbers with `level` digits each. The teacher's reference
response works digit by digit, least-significant first, with explicit carries, and ends in
"=<answer>". Every step has a fixed width ("a+b+c=ss") so a tiny transformer can locate the
digits it needs by relative position.

Held-out skill ("rev"): reversing the digits of a number. The student knows it before
distillation and the distillation pool never contains it, so its accuracy after distillation
measures forgetting.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ADD_SKILL = "add"
REVERSE_SKILL = "rev"

_LAST_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Problem:
    id: str
    prompt: str
    answer: str
    level: int
    skill: str


@dataclass(frozen=True)
class TaskSplits:
    """Disjoint problem sets: teacher/student supervised data, distillation pool, evaluation,
    and a dev split (the student's warm-up stops when its accuracy there is in a band)."""

    train: list[Problem]
    pool: list[Problem]
    eval: list[Problem]
    heldout_train: list[Problem]
    heldout_eval: list[Problem]
    dev: list[Problem] = field(default_factory=list)


def addition_problem(a: int, b: int, level: int) -> Problem:
    return Problem(
        id=f"add-{level}-{a}+{b}",
        prompt=f"{a}+{b}:",
        answer=str(a + b),
        level=level,
        skill=ADD_SKILL,
    )


def reverse_problem(n: int) -> Problem:
    digits = str(n)
    return Problem(
        id=f"rev-{len(digits)}-{n}",
        prompt=f"rev {digits}:",
        answer=digits[::-1],
        level=len(digits),
        skill=REVERSE_SKILL,
    )


def _operands(problem: Problem) -> tuple[int, int]:
    left, right = problem.prompt.rstrip(":").split("+")
    return int(left), int(right)


def reference_response(problem: Problem) -> str:
    """The teacher's worked solution; its last number is always the answer."""
    if problem.skill == REVERSE_SKILL:
        return f"={problem.answer}"
    a, b = _operands(problem)
    # Zero-pad both operands to the level so every problem of a level has the same steps.
    digits_a = str(a).zfill(problem.level)[::-1]
    digits_b = str(b).zfill(problem.level)[::-1]
    steps, carry = [], 0
    for da, db in zip(digits_a, digits_b, strict=True):
        total = int(da) + int(db) + carry
        steps.append(f"{da}+{db}+{carry}={total:02d}")
        carry = total // 10
    return " ".join(steps) + f" ={a + b}"


def final_answer(completion: str) -> str | None:
    """The last integer in a completion (how the exact verifier reads an answer)."""
    found = _LAST_INTEGER.findall(completion)
    return found[-1] if found else None


def is_correct(problem: Problem, completion: str) -> bool:
    return final_answer(completion) == problem.answer


def _random_operand(rng: random.Random, level: int) -> int:
    low = 0 if level == 1 else 10 ** (level - 1)
    return rng.randint(low, 10**level - 1)


def _random_reversible(rng: random.Random, digits: int) -> int:
    # Digits 1-9 only: a reversed number then never starts with 0, so the answer string is
    # exactly the integer a verifier would parse.
    return int("".join(str(rng.randint(1, 9)) for _ in range(digits)))


def _random_addition(rng: random.Random, level: int) -> Problem:
    return addition_problem(_random_operand(rng, level), _random_operand(rng, level), level)


def _random_reverse(rng: random.Random, digits: int) -> Problem:
    return reverse_problem(_random_reversible(rng, digits))


def _addition_capacity(level: int) -> int:
    count = 10 if level == 1 else 9 * 10 ** (level - 1)
    return count * count


def make_problems(
    seed: int,
    per_level: int,
    levels: Iterable[int],
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[Problem]:
    """`per_level` distinct addition problems per level, deterministic in `seed`.

    Problems whose id is in `exclude` are skipped, which is how splits stay disjoint. A level
    with fewer free problems than `per_level` (level 1 has only 100) yields all that remain.
    """
    problems: list[Problem] = []
    for level in levels:
        rng = random.Random(f"add:{seed}:{level}")
        free = _addition_capacity(level) - sum(1 for x in exclude if x.startswith(f"add-{level}-"))
        target = min(per_level, free)
        problems += _distinct(target, functools.partial(_random_addition, rng, level), exclude)
    return problems


def make_reverse_problems(
    seed: int,
    count: int,
    digit_counts: Iterable[int],
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[Problem]:
    """Up to `count` distinct held-out-skill problems spread evenly over `digit_counts`.

    A digit count with fewer free problems than its share (9**d exist) yields all it has.
    """
    choices = list(digit_counts)
    problems: list[Problem] = []
    for position, digits in enumerate(choices):
        rng = random.Random(f"rev:{seed}:{digits}")
        share = count // len(choices) + (1 if position < count % len(choices) else 0)
        taken = sum(1 for x in exclude if x.startswith(f"rev-{digits}-"))
        target = min(share, 9**digits - taken)
        problems += _distinct(target, functools.partial(_random_reverse, rng, digits), exclude)
    return problems


def _distinct(
    target: int, make: Callable[[], Problem], exclude: set[str] | frozenset[str]
) -> list[Problem]:
    """`target` problems from repeated make() calls, ids new to `exclude` and each other."""
    seen: set[str] = set()
    out: list[Problem] = []
    while len(seen) < target:
        problem = make()
        if problem.id in seen or problem.id in exclude:
            continue
        seen.add(problem.id)
        out.append(problem)
    return out


def _held_out(
    seed: int, per_level: int, levels: Iterable[int], exclude: set[str] | frozenset[str]
) -> list[Problem]:
    """Evaluation-style problems, at most a fifth of a level's distinct problems each, so a
    small level (level 1 has 100) keeps most of its problems for training."""
    problems: list[Problem] = []
    for level in levels:
        cap = _addition_capacity(level) // 5
        problems += make_problems(seed, min(per_level, cap), [level], exclude=exclude)
    return problems


def make_splits(
    seed: int,
    levels: int,
    train_per_level: int,
    pool_per_level: int,
    eval_per_level: int,
    heldout_train: int,
    heldout_eval: int,
    reverse_digits: tuple[int, ...] = (3, 4, 5),
    pool_levels: tuple[int, ...] | None = None,
    dev_per_level: int = 0,
) -> TaskSplits:
    """Build every split; evaluation is drawn first, then dev, the pool, then training data.

    `pool_levels` (default: every level) restricts the distillation pool to the levels the
    student is meant to learn; `dev_per_level` problems per level go to the dev split.
    """
    level_range = range(1, levels + 1)
    eval_set = _held_out(seed * 3 + 1, eval_per_level, level_range, frozenset())
    taken = {p.id for p in eval_set}
    dev = _held_out(seed * 3 + 11, dev_per_level, level_range, taken)
    taken |= {p.id for p in dev}
    pool = make_problems(seed * 3 + 2, pool_per_level, pool_levels or level_range, exclude=taken)
    taken |= {p.id for p in pool}
    train = make_problems(seed * 3 + 3, train_per_level, level_range, exclude=taken)
    rev_eval = make_reverse_problems(seed * 2 + 1, heldout_eval, reverse_digits)
    rev_train = make_reverse_problems(
        seed * 2 + 2, heldout_train, reverse_digits, exclude={p.id for p in rev_eval}
    )
    return TaskSplits(train, pool, eval_set, rev_train, rev_eval, dev)


def write_jsonl(path: Path, problems: Iterable[Problem]) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        for problem in problems:
            handle.write(json.dumps(asdict(problem)) + "\n")


def read_jsonl(path: Path) -> list[Problem]:
    with Path(path).open(encoding="utf-8") as handle:
        return [Problem(**json.loads(line)) for line in handle if line.strip()]

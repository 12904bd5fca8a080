import re

import pytest

from trainer_client.tasks.word_problems.problems import (
    FAMILIES,
    HELD_OUT_FAMILY,
    LEVELS,
    TRAIN_FAMILIES,
    make_pool,
    make_problem,
)


def _replay(question: str) -> int:
    """Recompute the answer from the text alone: the numbers and the verbs that move them."""
    value = None
    for sentence in re.split(r"(?<=[.?])\s+", question):
        numbers = [int(n) for n in re.findall(r"\d+", sentence)]
        if value is None:
            value = numbers[0]
        elif "two times" in sentence:
            value *= 2
        elif "three times" in sentence:
            value *= 3
        elif any(w in sentence for w in ("gives", "get off", "spends", "sells")):
            value -= numbers[0]
        elif numbers:
            value += numbers[0]
    return value


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("level", LEVELS)
def test_answers_follow_from_the_text(family, level):
    for index in range(30):
        problem = make_problem(family, level, index, seed=3)
        assert int(problem.answer) == _replay(problem.question)
        assert int(problem.answer) >= 0
        assert problem.question.endswith("now?")


def test_difficulty_knob_sets_steps_and_sizes():
    def steps(p):
        return len(re.split(r"(?<=[.?])\s+", p.question)) - 2

    assert {steps(make_problem("bus", 1, i)) for i in range(20)} == {1}
    assert {steps(make_problem("bus", 2, i)) for i in range(20)} == {2}
    level4 = [make_problem("apples", 4, i) for i in range(20)]
    assert {steps(p) for p in level4} == {3}
    assert all("times as large" in p.question for p in level4)
    assert (
        max(
            int(n)
            for i in range(50)
            for n in re.findall(r"\d+", make_problem("bus", 1, i).question)
        )
        <= 10
    )


def test_deterministic_and_distinct():
    assert make_problem("bus", 2, 5, seed=1) == make_problem("bus", 2, 5, seed=1)
    assert make_problem("bus", 2, 5, seed=1) != make_problem("bus", 2, 5, seed=2)
    pool = make_pool(60)
    assert len({p.problem_id for p in pool}) == 60
    assert {p.family for p in pool} == set(TRAIN_FAMILIES)
    assert {p.level for p in pool} == set(LEVELS)
    held = make_pool(12, families=(HELD_OUT_FAMILY,), start_index=1000)
    assert {p.family for p in held} == {HELD_OUT_FAMILY}
    assert not {p.problem_id for p in held} & {p.problem_id for p in pool}
    later = make_pool(60, start_index=1000)
    assert not {p.question for p in later} & {p.question for p in pool}


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="family"):
        make_problem("trains", 1, 0)
    with pytest.raises(ValueError, match="level"):
        make_problem("bus", 5, 0)
    with pytest.raises(ValueError, match="count"):
        make_pool(-1)

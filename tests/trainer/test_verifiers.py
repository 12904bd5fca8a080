"""Verifiers on tricky inputs; the math-verify pool is shared by the module (2 workers)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer_client.trainer.math_verifier import MathVerifier, integer_fast_path
from trainer_client.trainer.verifiers import (
    ExactVerifier,
    Verifier,
    exact_match,
    last_number,
    make_verifier,
)


@pytest.mark.parametrize(
    ("completion", "answer", "expected"),
    [
        ("The answer is 42.", "42", True),
        ("I think 41, no wait, 42", "42", True),
        ("42 at first, but finally 41", "42", False),
        ("Total: 1,000 apples", "1000", True),
        ("Total: 1000", "1,000", True),
        ("007", "7", True),
        ("-0", "0", True),
        ("so x = 3.0", "3", True),
        ("3.5", "3", False),
        ("x = -12", "-12", True),
        ("x = -12", "12", False),
        ("5-3", "3", True),  # binary minus is not a sign
        ("\u22127", "-7", True),  # unicode minus
        ("\uff17\uff12", "72", True),  # full-width digits
        ("version v2", "2", False),  # digits glued to a word are not an answer
        ("1e3", "1000", True),
        ("answer: .5", "0.5", True),
        ("", "7", False),
        ("   \n\n", "7", False),
        ("no numbers here", "7", False),
        ("9" * 400 + "8", "9" * 400 + "8", True),
        ("9" * 400 + "8", "9" * 400 + "7", False),
        ("1e999999999999", "1e999999999999", True),
        ("Reasoning...\nParis", "paris", True),
        ("Reasoning...\n  The   Moon.  \n\n", "the moon", True),
        ("Paris is nice\nLondon", "Paris", False),
        ("\u2603\u00e9\u4e2d", "\u4e2d", False),
        ("\u2603\n\u00c9T\u00c9", "\u00e9t\u00e9", True),
        ("anything", "", False),
        ("anything", "   ", False),
    ],
)
def test_exact_verifier_cases(completion, answer, expected):
    assert exact_match(completion, answer) is expected
    assert ExactVerifier().grade([completion], [answer]) == [expected]


@pytest.mark.parametrize("bad", [None, 3.5j, ["42"], b"42", object()])
def test_exact_verifier_never_raises_on_non_text(bad):
    assert ExactVerifier().grade([bad, "42"], ["42", bad]) == [False, False]


def test_exact_verifier_accepts_numeric_answers_and_checks_lengths():
    assert ExactVerifier().grade(["it is 12"], [12]) == [True]
    with pytest.raises(ValueError):
        ExactVerifier().grade(["a", "b"], ["a"])


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_exact_verifier_never_raises_on_arbitrary_text(completion, answer):
    assert ExactVerifier().grade([completion], [answer])[0] in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from(["{:,}", "{}", "{}.0"]))
def test_exact_verifier_reads_any_integer_in_any_common_format(n, fmt):
    completion = "Some reasoning 17 and 3.5 ... so the answer is " + fmt.format(n) + "."
    assert exact_match(completion, str(n))
    assert not exact_match(completion, str(n + 1))


def test_last_number_is_fast_on_long_text():
    text = "step 1 then 2 " * 20_000 + "final 123"
    start = time.perf_counter()
    assert last_number(text) == 123
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("completion", "answer", "expected"),
    [
        ("42", "42", True),
        (" $42$ ", "42", True),
        ("\\boxed{42}", "42", True),
        ("so \\boxed{1,000}.", "1000", True),
        ("\\boxed{41}", "42", False),
        ("\\boxed{3} then \\boxed{42}", "42", None),  # ambiguous: defer to math-verify
        ("The answer is 42", "42", None),  # free text: defer to math-verify
        ("\\boxed{1/2}", "42", None),
        ("42", "1/2", None),
    ],
)
def test_integer_fast_path(completion, answer, expected):
    assert integer_fast_path(completion, answer) is expected


def test_make_verifier():
    assert isinstance(make_verifier("exact"), ExactVerifier)
    with make_verifier("math", max_workers=1) as verifier:
        assert isinstance(verifier, MathVerifier)
        assert isinstance(verifier, Verifier)
    with pytest.raises(ValueError):
        make_verifier("llm-judge")


@pytest.fixture(scope="module")
def math_verifier():
    with MathVerifier(max_workers=2, timeout_s=5) as verifier:
        yield verifier


MATH_CASES = [
    ("\\boxed{1/2}", "0.5", True),
    ("The result is $\\frac{1}{2}$", "1/2", True),
    ("\\boxed{0.5}", "\\frac{1}{2}", True),
    ("\\boxed{\\frac{2}{4}}", "0.5", True),
    ("\\boxed{1/3}", "0.5", False),
    ("\\boxed{x + 1}", "1 + x", True),
    ("\\boxed{x - 1}", "1 + x", False),
    ("\\boxed{" + "1" + "0" * 100 + "}", "10^{100}", True),
    ("\\boxed{\\text{Paris}}", "\\text{Paris}", True),
    ("The answer is 42", "42", True),
    ("first 42 then 7", "42", False),
    ("", "0.5", False),
    ("}}}{{{\\frac{", "0.5", False),
    ("\u2603 \u4e2d\u6587", "0.5", False),
    ("\\boxed{0.5}", "", False),
]


def test_math_verifier_tricky_inputs(math_verifier):
    completions = [c for c, _, _ in MATH_CASES]
    answers = [a for _, a, _ in MATH_CASES]
    expected = [e for _, _, e in MATH_CASES]
    assert math_verifier.grade(completions, answers) == expected


def test_math_verifier_chunks_and_fast_path_agree_with_math_verify(math_verifier):
    # Small chunks force several pool tasks; the integer pairs take the fast path and must
    # agree with what the pool says for the same pairs written so that the pool grades them.
    pairs = [(f"\\boxed{{{n}}}", str(n if n % 3 else n + 1)) for n in range(12)]
    fast = math_verifier.grade([c for c, _ in pairs], [a for _, a in pairs])
    slow_completions = [f"The final answer is \\boxed{{{c[7:-1]}}} ." for c, _ in pairs]
    math_verifier.chunk_size = 5
    try:
        slow = math_verifier.grade(slow_completions, [f"${a}$" for _, a in pairs])
    finally:
        math_verifier.chunk_size = 32
    assert fast == slow == [bool(n % 3) for n in range(12)]


def test_math_verifier_none_ish_and_lengths(math_verifier):
    assert math_verifier.grade([None, "\\boxed{1}", "\\boxed{1}"], ["1", None, 1]) == [
        False,
        False,
        True,
    ]
    assert math_verifier.grade([], []) == []
    with pytest.raises(ValueError):
        math_verifier.grade(["1"], [])


def test_math_verifier_recovers_after_a_broken_pool():
    with MathVerifier(max_workers=1, timeout_s=5) as verifier:
        assert verifier.grade(["\\boxed{1/2}"], ["0.5"]) == [True]
        verifier._discard_pool()  # as after a wedged worker
        assert verifier.grade(["\\boxed{1/2}"], ["0.5"]) == [True]


def test_math_verifier_times_out_a_pathological_item_without_losing_the_others():
    # 9^(9^(9^9)) cannot be compared symbolically in time: math-verify's alarm fires in the
    # worker and the item is False, while its chunk-mates are still graded.
    with MathVerifier(max_workers=1, timeout_s=1) as verifier:
        start = time.perf_counter()
        graded = verifier.grade(
            ["\\boxed{1/2}", "\\boxed{9^{9^{9^{9}}}}", "\\boxed{0.25}"], ["0.5", "1", "1/4"]
        )
        elapsed = time.perf_counter() - start
    assert graded == [True, False, True]
    assert elapsed < 30

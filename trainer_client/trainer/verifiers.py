"""Verifiers: grade completions against reference answers (the source of pass rates p).

- ``ExactVerifier``: last number in the completion vs a numeric answer (exact decimal
  comparison), else the last line vs a string answer. Pure Python, microseconds per item.
- ``MathVerifier`` (math_verifier.py): math-verify (symbolic/LaTeX equivalence) in a spawn
  process pool, because math-verify's timeouts use ``signal.alarm`` which only works in a
  process's main thread. Plain-integer pairs skip the pool (about 1000x cheaper).

Grading never raises on odd *content* (None, garbage, huge numbers): it returns False.
Mismatched list lengths are a caller bug and raise ``ValueError``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from trainer_client.trainer.math_verifier import MathVerifier


@runtime_checkable
class Verifier(Protocol):
    def grade(self, completions: list[str], answers: list[str]) -> list[bool]:
        """One bool per (completion, answer) pair: is the completion's final answer right?"""
        ...


# ---------------------------------------------------------------------------------------------
# Text normalisation and number extraction (shared by both verifiers)
# ---------------------------------------------------------------------------------------------

_NUMBER_BODY = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_EXPONENT = r"(?:[eE][-+]?\d+)?"
# A number not glued to a preceding word/number ("x2", "v1.2" are not answers) and not
# followed by more digits. A sign glued to a preceding word is a binary minus, so the
# lookbehind rejects "-3" in "5-3" and the match restarts at "3".
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w.])[-+]?(?:{_NUMBER_BODY}){_EXPONENT}(?!\d)")
_WHOLE_NUMBER = re.compile(rf"[-+]?(?:{_NUMBER_BODY}){_EXPONENT}")
_PLAIN_INTEGER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2012": "-", "\ufe63": "-"})


def _as_text(value: Any) -> str | None:
    """Strings pass; ints/floats/Decimals become text; anything else (None, lists) -> None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def _normalise(text: str) -> str:
    # NFKC folds full-width digits and compatibility forms; unicode minus signs become "-".
    return unicodedata.normalize("NFKC", text).translate(_MINUS_SIGNS)


def _to_decimal(token: str) -> Decimal | None:
    try:
        value = Decimal(token.replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def parse_number(text: str) -> Decimal | None:
    """The whole (stripped) text as an exact number, or None ("007" -> 7, "1,000" -> 1000)."""
    cleaned = _normalise(text).strip().strip("$").strip()
    if cleaned.endswith(".") and not cleaned.endswith(".."):
        cleaned = cleaned[:-1]
    if not _WHOLE_NUMBER.fullmatch(cleaned):
        return None
    return _to_decimal(cleaned)


def last_number(text: str) -> Decimal | None:
    """The last number written in ``text``, or None."""
    matches = _NUMBER_IN_TEXT.findall(_normalise(text))
    return _to_decimal(matches[-1]) if matches else None


def _normalise_string_answer(text: str) -> str:
    return " ".join(_normalise(text).casefold().split()).rstrip(".").strip()


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def exact_match(completion: Any, answer: Any) -> bool:
    """ExactVerifier's rule for one pair; never raises on odd content."""
    completion_text, answer_text = _as_text(completion), _as_text(answer)
    if completion_text is None or answer_text is None:
        return False
    try:
        expected = parse_number(answer_text)
        if expected is not None:
            got = last_number(completion_text)
            return got is not None and got == expected
        wanted = _normalise_string_answer(answer_text)
        return bool(wanted) and _normalise_string_answer(_last_line(completion_text)) == wanted
    except (ValueError, ArithmeticError, RecursionError):
        return False


def _check_lengths(completions: Sequence[Any], answers: Sequence[Any]) -> None:
    if len(completions) != len(answers):
        raise ValueError(f"{len(completions)} completions but {len(answers)} answers")


class ExactVerifier:
    """Last number (numeric answers) or last line (string answers), normalised."""

    def grade(self, completions: list[str], answers: list[str]) -> list[bool]:
        _check_lengths(completions, answers)
        return [exact_match(c, a) for c, a in zip(completions, answers, strict=True)]

    def close(self) -> None:
        """Nothing to release; present so every verifier can be closed the same way."""

    def __enter__(self) -> ExactVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_verifier(name: Literal["exact", "math"], **kwargs: Any) -> ExactVerifier | MathVerifier:
    """Build a verifier by name; ``kwargs`` go to ``MathVerifier`` (e.g. max_workers)."""
    from trainer_client.trainer.math_verifier import MathVerifier

    if name == "exact":
        if kwargs:
            raise TypeError(f"ExactVerifier takes no options, got {sorted(kwargs)}")
        return ExactVerifier()
    if name == "math":
        return MathVerifier(**kwargs)
    raise ValueError(f"unknown verifier {name!r}; expected 'exact' or 'math'")

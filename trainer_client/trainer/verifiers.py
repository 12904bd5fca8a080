"""Verifiers: grade completions against reference answers (the source of pass rates p).

- ``ExactVerifier``: last number in the completion vs a numeric answer (exact decimal
  comparison), else the last line vs a string answer. Pure Python, microseconds per item.
- ``MathVerifier``: math-verify (symbolic/LaTeX equivalence) in a spawn process pool, because
  math-verify's timeouts use ``signal.alarm`` which only works in a process's main thread.
  Plain-integer pairs skip the pool (about 1000x cheaper).

Grading never raises on odd *content* (None, garbage, huge numbers): it returns False.
Mismatched list lengths are a caller bug and raise ``ValueError``.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol, runtime_checkable


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


# ---------------------------------------------------------------------------------------------
# math-verify in a spawn process pool
# ---------------------------------------------------------------------------------------------


def integer_fast_path(completion: str, answer: str) -> bool | None:
    """Grade without math-verify when both sides are plain integers, else None.

    The completion's side is its single ``\\boxed{...}`` content if it has exactly one (the
    part math-verify would pick), otherwise the whole stripped completion.
    """
    gold = _normalise(answer).strip().strip("$").strip()
    if not _PLAIN_INTEGER.fullmatch(gold):
        return None
    text = _normalise(completion)
    boxed = _BOXED.findall(text)
    if "\\boxed" in text and len(boxed) != 1:
        return None
    candidate = (boxed[0] if boxed else text).strip().strip("$").strip()
    if not _PLAIN_INTEGER.fullmatch(candidate):
        return None
    return _to_decimal(candidate) == _to_decimal(gold)


def _parse_gold(gold: str, timeout: int) -> list:
    from math_verify import parse

    # A bare gold like "10^{100}" or "x+1" is only read correctly inside math delimiters.
    if "$" in gold or "\\boxed" in gold or "\\(" in gold or "\\[" in gold:
        return parse(gold, parsing_timeout=timeout)
    return parse(f"${gold}$", parsing_timeout=timeout) or parse(gold, parsing_timeout=timeout)


def _math_verify_chunk(pairs: list[tuple[str, str]], timeout: int) -> list[bool]:
    """Runs in a pool worker (main thread, so math-verify's signal.alarm timeouts work)."""
    from math_verify import parse, verify

    results = []
    for completion, answer in pairs:
        try:
            gold = _parse_gold(answer, timeout)
            pred = parse(completion, parsing_timeout=timeout)
            ok = bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=timeout))
        except Exception:  # any failure to grade means "not verified correct"
            ok = False
        results.append(ok)
    return results


class MathVerifier:
    """math-verify grading in a small spawn process pool; use as a context manager.

    ``timeout_s`` bounds each parse/verify call inside the worker (math-verify's own alarm);
    a chunk that still does not come back in time (a wedged worker) is graded False and the
    pool is replaced. ``startup_grace_s`` covers spawning workers and importing sympy.
    Workers are spawned on first use, so a script using it needs the usual
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(
        self,
        *,
        max_workers: int = 2,
        timeout_s: float = 5.0,
        chunk_size: int = 32,
        startup_grace_s: float = 60.0,
    ) -> None:
        if max_workers < 1 or chunk_size < 1 or timeout_s <= 0:
            raise ValueError("max_workers and chunk_size must be >= 1, timeout_s > 0")
        self.max_workers = max_workers
        self.timeout_s = timeout_s
        self.chunk_size = chunk_size
        self.startup_grace_s = startup_grace_s
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def grade(self, completions: list[str], answers: list[str]) -> list[bool]:
        _check_lengths(completions, answers)
        results = [False] * len(completions)
        pending: list[tuple[int, str, str]] = []
        for i, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
            c, a = _as_text(completion), _as_text(answer)
            if c is None or a is None or not a.strip():
                continue
            fast = integer_fast_path(c, a)
            if fast is not None:
                results[i] = fast
            else:
                pending.append((i, c, a))
        if pending:
            self._grade_in_pool(pending, results)
        return results

    def _grade_in_pool(self, pending: list[tuple[int, str, str]], results: list[bool]) -> None:
        per_call = max(1, math.ceil(self.timeout_s))
        chunks = [pending[i : i + self.chunk_size] for i in range(0, len(pending), self.chunk_size)]
        try:
            pool = self._executor()
            futures: list[tuple[Future, list[int]]] = [
                (
                    pool.submit(_math_verify_chunk, [(c, a) for _, c, a in chunk], per_call),
                    [i for i, _, _ in chunk],
                )
                for chunk in chunks
            ]
        except Exception:  # a pool that cannot start grades everything False
            self._discard_pool()
            return
        # Each item makes three alarm-bounded calls (two parses, one verify); rounds of
        # max_workers chunks run in parallel.
        rounds = math.ceil(len(chunks) / self.max_workers)
        budget = self.startup_grace_s + rounds * self.chunk_size * 3 * per_call
        deadline = time.monotonic() + budget
        wedged = False
        for future, indices in futures:
            try:
                graded = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                wedged = True
                continue
            except Exception:  # a crashed worker (BrokenProcessPool) -> False
                wedged = True
                continue
            for index, ok in zip(indices, graded, strict=True):
                results[index] = ok
        if wedged:
            self._discard_pool()

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Python < 3.14 has no public way to kill busy workers; terminate them defensively.
        for process in list(getattr(pool, "_processes", {}).values()):
            try:
                process.terminate()
            except Exception:  # already gone
                pass
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_verifier(name: Literal["exact", "math"], **kwargs: Any) -> ExactVerifier | MathVerifier:
    """Build a verifier by name; ``kwargs`` go to ``MathVerifier`` (e.g. max_workers)."""
    if name == "exact":
        if kwargs:
            raise TypeError(f"ExactVerifier takes no options, got {sorted(kwargs)}")
        return ExactVerifier()
    if name == "math":
        return MathVerifier(**kwargs)
    raise ValueError(f"unknown verifier {name!r}; expected 'exact' or 'math'")

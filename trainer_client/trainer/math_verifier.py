"""``MathVerifier``: math-verify (symbolic/LaTeX equivalence) grading in a spawn process pool.

math-verify's timeouts use ``signal.alarm``, which only works in a process's main thread,
hence the pool. Plain-integer pairs skip it (about 1000x cheaper). Grading never raises on
odd content: it returns False (verifiers.py says the same of every verifier).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from trainer_client.trainer.verifiers import (
    _BOXED,
    _PLAIN_INTEGER,
    _as_text,
    _check_lengths,
    _normalise,
    _to_decimal,
)


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

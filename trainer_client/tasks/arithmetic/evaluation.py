"""Batched generation, greedy accuracy and sampled pass rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from trainer_client.tasks.arithmetic.problems import Problem, is_correct, reference_response

# Room beyond the reference length so a rambling model is still graded, not truncated early.
_EXTRA_TOKENS = 4


def _batches(problems: Sequence[Problem], batch_size: int) -> list[list[int]]:
    # Sorting by reference length keeps padding and generation length small within a batch.
    order = sorted(range(len(problems)), key=lambda i: len(reference_response(problems[i])))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def generate_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    *,
    num_samples: int = 1,
    temperature: float = 0.0,
    batch_size: int = 256,
    seed: int = 0,
    progress: str | None = None,
) -> list[list[str]]:
    """`num_samples` completions per problem (greedy when temperature is 0), in input order.

    `batch_size` counts sequences, so a batch holds batch_size // num_samples prompts.
    `progress`: a progress bar's label (shown on a terminal), or None for none.
    """
    model.eval()
    prompts_per_batch = max(1, batch_size // num_samples)
    completions: list[list[str]] = [[] for _ in problems]
    batches = _batches(problems, prompts_per_batch)
    if progress is not None:
        batches = tqdm(batches, desc=progress, unit="batch", leave=False, disable=None)
    for batch_index, batch in enumerate(batches):
        encoded = tokenizer([problems[i].prompt for i in batch], padding=True, return_tensors="pt")
        budget = max(len(reference_response(problems[i])) for i in batch) + _EXTRA_TOKENS
        sampling = temperature > 0
        if sampling:
            # A seed per batch keeps results reproducible whatever ran before.
            torch.manual_seed(seed * 100_003 + batch_index)
        generate: Any = model.generate  # typed as a module attribute (a Tensor) by torch's stubs
        output = generate(
            **encoded,
            max_new_tokens=budget,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_k=0 if sampling else None,
            top_p=1.0 if sampling else None,
            num_return_sequences=num_samples,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts = tokenizer.batch_decode(
            output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True
        )
        for row, problem_index in enumerate(batch):
            completions[problem_index] = texts[row * num_samples : (row + 1) * num_samples]
    return completions


def _accuracy_report(problems: Sequence[Problem], correct: Sequence[bool]) -> dict:
    by_level: dict[int, list[bool]] = defaultdict(list)
    for problem, ok in zip(problems, correct, strict=True):
        by_level[problem.level].append(ok)
    return {
        "accuracy": float(np.mean(correct)) if correct else 0.0,
        "n": len(correct),
        "per_level": {level: float(np.mean(v)) for level, v in sorted(by_level.items())},
    }


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    batch_size: int = 256,
) -> dict:
    """Greedy accuracy: {"accuracy", "n", "per_level": {level: accuracy}}."""
    completions = generate_completions(model, tokenizer, problems, batch_size=batch_size)
    correct = [is_correct(p, c[0]) for p, c in zip(problems, completions, strict=True)]
    return _accuracy_report(problems, correct)


def sample_pass_rates(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    k: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
    batch_size: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Empirical pass rate of each problem over `k` sampled completions."""
    completions = generate_completions(
        model,
        tokenizer,
        problems,
        num_samples=k,
        temperature=temperature,
        batch_size=batch_size,
        seed=seed,
        progress="pass rates" if progress else None,
    )
    return np.array(
        [
            np.mean([is_correct(p, c) for c in samples])
            for p, samples in zip(problems, completions, strict=True)
        ]
    )


def zone_shares(pass_rates: np.ndarray) -> dict[str, float]:
    """Share of problems mastered (p=1), at the frontier (0<p<1) and intractable (p=0)."""
    n = max(1, len(pass_rates))
    mastered = int(np.sum(pass_rates >= 1.0))
    intractable = int(np.sum(pass_rates <= 0.0))
    return {
        "mastered": mastered / n,
        "frontier": (len(pass_rates) - mastered - intractable) / n,
        "intractable": intractable / n,
    }

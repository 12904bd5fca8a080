"""Sampling rules shared by the vLLM engines (in-process and over HTTP)."""

from __future__ import annotations

from typing import Any


def spaced_seeds(base_seed: int, num_prompts: int, k: int) -> list[int]:
    """Per-prompt request seeds base + i*k.

    vLLM seeds the j-th of a request's n=k children with seed + j, so consecutive per-prompt
    seeds (base + i) would give prompt i's child 1 the same stream as prompt i+1's child 0.
    Spacing by k keeps every child's seed (base + i*k + j) distinct.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    return [base_seed + i * k for i in range(num_prompts)]


def neutral_sampling(temperature: float, top_p: float) -> dict[str, Any]:
    """Sampling fields set explicitly, so a checkpoint's generation_config defaults (top_k,
    repetition penalties, ...) never change the distribution pass rates describe."""
    return {
        "temperature": temperature,
        "top_p": top_p,
        "top_k": 0,  # 0: every token
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }


def samples_per_request(k: int, temperature: float) -> int:
    """vLLM rejects n > 1 with greedy sampling (all samples would be equal anyway): ask for
    one and repeat it k times (as TransformersEngine does)."""
    return 1 if temperature == 0 else k


def repeat_to_k(completions: list[Any], k: int) -> list[Any]:
    if len(completions) == 1 and k > 1:
        only = completions[0]
        return [type(only)(only.text, list(only.token_ids)) for _ in range(k)]
    return completions

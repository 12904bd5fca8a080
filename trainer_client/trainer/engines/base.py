"""What every rollout engine provides: K sampled completions per prompt, reproducibly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Completion:
    """One sampled continuation: decoded text (special tokens removed) and its token ids
    (the generated part only, cut after the first end-of-sequence token)."""

    text: str
    token_ids: list[int] = field(default_factory=list)


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(
        self,
        prompts: list[str],
        k: int,
        *,
        seed: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> list[list[Completion]]:
        """K completions per prompt (outer list follows ``prompts``); the same seed, prompts
        and weights give the same completions. temperature == 0 means greedy."""
        ...

    def load_weights(self, model_or_state_dict: Any) -> None:
        """Make the engine sample from new student weights (a module or a state dict)."""
        ...


@dataclass(frozen=True)
class Sampling:
    """What one generate call asks of every prompt: k completions, seeded, budgeted."""

    k: int
    seed: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0


class Engine:
    """The bundled engines' shared front: `generate` checks its arguments the same way for
    every engine (checked_sampling) and hands the prompts to the engine's `sample`."""

    def generate(self, prompts: list[str], k: int, **options: Any) -> list[list[Completion]]:
        """RolloutEngine.generate; `options` are its keywords, Sampling's fields (seed,
        max_new_tokens, temperature, top_p): a missing or unknown one is a TypeError."""
        sampling = checked_sampling(prompts, k, options)
        return self.sample(prompts, sampling) if prompts else []

    def sample(self, prompts: list[str], sampling: Sampling) -> list[list[Completion]]:
        """K completions per prompt, for checked arguments and at least one prompt."""
        raise NotImplementedError

    def load_weights(self, model_or_state_dict: Any) -> None:
        raise NotImplementedError


def checked_sampling(prompts: list[str], k: int, options: dict[str, Any]) -> Sampling:
    """generate's keywords as a Sampling, after validate_generate_args (every generate
    front: Engine.generate, OpenAIEngine.agenerate)."""
    sampling = Sampling(k, **options)
    validate_generate_args(
        prompts, k, sampling.max_new_tokens, sampling.temperature, sampling.top_p
    )
    return sampling


def validate_generate_args(
    prompts: list[str], k: int, max_new_tokens: int, temperature: float, top_p: float
) -> None:
    """Shared argument checks so every engine rejects the same bad calls."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not a single string")
    if k < 1:
        raise ValueError("k must be >= 1")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0 (0 = greedy)")
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")

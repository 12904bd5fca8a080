"""How long an engine's completions are, and how many the token budget cut.

A response cut by the budget is graded wrong whatever the model knew, so a measured pass
rate or accuracy means little without the share of cut responses beside it.
`LengthRecordingEngine` wraps any rollout engine and records the length of every completion
it returns, without changing the engine's interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer_client.trainer.engines.base import Completion, RolloutEngine


@dataclass
class ResponseLengths:
    """How long the responses were and how many hit the token budget (cut before the end)."""

    responses: int = 0
    tokens: int = 0
    truncated: int = 0

    def add(self, token_ids: Sequence[int], max_new_tokens: int, eos_ids: Sequence[int]) -> None:
        self.responses += 1
        self.tokens += len(token_ids)
        # Cut by the budget: as long as allowed and not ended by end-of-sequence.
        if len(token_ids) >= max_new_tokens and (not token_ids or token_ids[-1] not in eos_ids):
            self.truncated += 1

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.responses if self.responses else float("nan")

    @property
    def truncated_fraction(self) -> float:
        return self.truncated / self.responses if self.responses else float("nan")


class LengthRecordingEngine:
    """A rollout engine that records the length of every completion the inner one returns."""

    def __init__(self, engine: RolloutEngine, eos_ids: Sequence[int]) -> None:
        self.engine = engine
        self.eos_ids = list(eos_ids)
        self.lengths = ResponseLengths()

    def take_lengths(self) -> ResponseLengths:
        """The lengths recorded since the last call (and start a new record)."""
        lengths, self.lengths = self.lengths, ResponseLengths()
        return lengths

    def generate(self, prompts: list[str], k: int, **kwargs: Any) -> list[list[Completion]]:
        groups = self.engine.generate(prompts, k, **kwargs)
        for group in groups:
            for completion in group:
                self.lengths.add(completion.token_ids, kwargs["max_new_tokens"], self.eos_ids)
        return groups

    def load_weights(self, model_or_state_dict: Any) -> None:
        self.engine.load_weights(model_or_state_dict)


def eos_ids(engine: Any, tokenizer: Any) -> list[int]:
    """The engine's end-of-sequence ids where it has them, else the tokenizer's."""
    ids = getattr(engine, "eos_token_ids", None)
    return list(ids) if ids else [int(tokenizer.eos_token_id)]

"""One distillation step: sequences -> teacher and student logits -> weighted loss -> update.

Forward KL (and AKL) run on the teacher's cached reference responses; reverse KL on fresh
student samples. Either way the sequence is prompt + response, and only the positions that
predict response tokens count: logits at position t predict token t+1, so for a prompt of
length P and a response of length R the mask covers positions P-1 .. P+R-2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from trainer_client.trainer.losses import distillation_loss

if TYPE_CHECKING:
    from trainer_client.trainer.draws import DrawnBatch


@dataclass
class SequenceBatch:
    input_ids: torch.Tensor  # [B, L], right-padded
    attention_mask: torch.Tensor  # [B, L]
    response_mask: torch.Tensor  # [B, L], 1 where the logit predicts a response token

    @property
    def response_tokens(self) -> int:
        return int(self.response_mask.sum())

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


def build_sequences(
    prompt_ids: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
) -> SequenceBatch:
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, responses, strict=True)]
    width = max(lengths)
    batch = len(lengths)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.float32)
    for row, (prompt, response) in enumerate(zip(prompt_ids, responses, strict=True)):
        ids = list(prompt) + list(response)
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[row, : len(ids)] = 1
        if response:
            mask[row, len(prompt) - 1 : len(ids) - 1] = 1.0
    return SequenceBatch(input_ids.to(device), attention.to(device), mask.to(device))


def _logits(model: torch.nn.Module, batch: SequenceBatch) -> torch.Tensor:
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits


def distill_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    batch: SequenceBatch,
    loss_weights: torch.Tensor,
    kind: str,
    *,
    mu: float = 0.5,
    temperature: float = 1.0,
    reduction: str = "token",
    normalizer: float | None = None,
) -> torch.Tensor:
    """Weighted divergence of kind "fkl" | "rkl" | "akl" (grad flows to student); see
    trainer_client.trainer.losses for the reductions and the normaliser."""
    with torch.no_grad():
        teacher_logits = _logits(teacher, batch)
    student_logits = _logits(student, batch)
    # Same tokenizer, but a model may pad its vocabulary: compare on the shared part.
    vocab = min(student_logits.shape[-1], teacher_logits.shape[-1])
    return distillation_loss(
        kind,  # type: ignore[arg-type]
        student_logits[..., :vocab],
        teacher_logits[..., :vocab],
        batch.response_mask,
        loss_weights.to(student_logits.device),
        mu=mu,
        temperature=temperature,
        reduction=reduction,  # type: ignore[arg-type]
        normalizer=normalizer,
    )


def token_counts(
    prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]]
) -> tuple[int, int]:
    """(response tokens, prompt + response tokens) of a batch."""
    pairs = zip(prompts, responses, strict=True)
    return sum(len(r) for r in responses), sum(len(p) + len(r) for p, r in pairs)


def loss_normalizer(
    reduction: str,
    drawn: DrawnBatch,
    response_tokens: int,
    references: Mapping[str, Sequence[int]],
) -> float:
    """The loss's N over the whole drawn batch, on every rank alike, including the
    zero-weight items whose forward pass was skipped: problems (sequence), or response
    tokens (token; `response_tokens` are the trained items', over all ranks), counting a
    skipped item at its teacher reference's length."""
    if reduction == "sequence":
        return float(len(drawn.items))
    trained_ids = {item.problem_id for item in drawn.trained}
    skipped = sum(
        len(references.get(item.problem_id, ()))
        for item in drawn.items
        if item.problem_id not in trained_ids
    )
    return float(response_tokens + skipped)

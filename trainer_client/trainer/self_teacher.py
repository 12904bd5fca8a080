"""On-policy self-distillation: the frozen model, shown the answer, teaches itself without it.

The student sees only the question (its chat-template prompt) and samples a response. The
teacher is the *frozen initial* model given privileged context: the same question plus the
ground-truth answer. Both score the student's own response token by token; the loss is the
reverse KL(student || teacher) on those tokens, each problem weighted by its PACED loss
weight (losses.reverse_kl: sum_b w_b L_b / N with a weight-independent normaliser).

Alignment: a response token r_j is predicted by the logits at position len(prompt) + j - 1 of
``prompt + response``. The two prompts differ in length, so each side is sliced at its own
offset; the sliced [B, T, V] tensors line up response token by response token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trainer_client.trainer.losses import Reduction, reverse_kl

# Appended after the student's whole user message (question AND answer-format instruction),
# so the teacher is asked for the same kind of response; it adds the answer and nothing that
# asks for a different length or style.
TEACHER_HINT = (
    "(For reference only: the correct final answer is {answer}. Do not mention that you were told.)"
)


def student_prompt(tokenizer: Any, user_text: str) -> str:
    """The chat-template prompt the student samples from (question only)."""
    messages = [{"role": "user", "content": user_text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def teacher_prompt(tokenizer: Any, user_text: str, answer: str) -> str:
    """The privileged prompt: the same question followed by the ground-truth answer."""
    hinted = f"{user_text}\n{TEACHER_HINT.format(answer=answer)}"
    messages = [{"role": "user", "content": hinted}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass
class SelfDistillExample:
    """One student response to score: both prompts' token ids and the response's ids."""

    student_prompt_ids: list[int]
    teacher_prompt_ids: list[int]
    response_ids: list[int]
    loss_weight: float = 1.0


def make_example(
    tokenizer: Any,
    user_text: str,
    answer: str,
    response_ids: Sequence[int],
    loss_weight: float = 1.0,
) -> SelfDistillExample:
    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    return SelfDistillExample(
        student_prompt_ids=ids(student_prompt(tokenizer, user_text)),
        teacher_prompt_ids=ids(teacher_prompt(tokenizer, user_text, answer)),
        response_ids=[int(t) for t in response_ids],
        loss_weight=float(loss_weight),
    )


def _response_logits(
    model: torch.nn.Module,
    prompts: list[list[int]],
    responses: list[list[int]],
    pad_id: int,
    width: int,
) -> Tensor:
    """[B, width, V]: the logits predicting each response token (right-padded batch)."""
    rows = [p + r for p, r in zip(prompts, responses, strict=True)]
    length = max(len(row) for row in rows)
    device = next(model.parameters()).device
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long, device=device)
    attention = torch.zeros((len(rows), length), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, device=device)
        attention[i, : len(row)] = 1
    logits = model(input_ids=input_ids, attention_mask=attention).logits
    picked = []
    for i, prompt in enumerate(prompts):
        start = len(prompt) - 1
        # Padded responses point past their end at positions the mask ignores; clamp them.
        index = torch.arange(start, start + width, device=device).clamp(max=length - 1)
        picked.append(logits[i].index_select(0, index))
    return torch.stack(picked)


def self_distill_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    examples: Sequence[SelfDistillExample],
    *,
    pad_id: int,
    reduction: Reduction = "sequence",
    normalizer: float | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """PACED-weighted reverse KL(student || privileged teacher) on the student's responses."""
    if not examples:
        raise ValueError("no examples")
    if any(not e.response_ids for e in examples):
        raise ValueError("every example needs at least one response token")
    responses = [e.response_ids for e in examples]
    width = max(len(r) for r in responses)
    device = next(student.parameters()).device
    mask = torch.zeros((len(examples), width), device=device)
    for i, response in enumerate(responses):
        mask[i, : len(response)] = 1
    weights = torch.tensor([e.loss_weight for e in examples], device=device)
    student_logits = _response_logits(
        student, [e.student_prompt_ids for e in examples], responses, pad_id, width
    )
    with torch.no_grad():
        teacher_logits = _response_logits(
            teacher, [e.teacher_prompt_ids for e in examples], responses, pad_id, width
        )
    return reverse_kl(
        student_logits,
        teacher_logits,
        mask,
        weights,
        reduction=reduction,
        normalizer=normalizer,
        temperature=temperature,
    )


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The self-teacher: a detached copy of the initial weights that never trains."""
    import copy

    teacher = copy.deepcopy(model)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher

"""Supervised next-token training on prompt + reference response (loss on the response only)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from trainer_client.tasks.arithmetic.problems import Problem, reference_response

IGNORE_INDEX = -100


def encode_example(tokenizer: PreTrainedTokenizerFast, problem: Problem) -> tuple[list[int], int]:
    """Token ids of <bos> prompt response <eos>, and how many leading ids are the prompt."""
    prompt_ids = tokenizer(problem.prompt)["input_ids"]
    response_ids = tokenizer(reference_response(problem), add_special_tokens=False)["input_ids"]
    return prompt_ids + response_ids + [tokenizer.eos_token_id], len(prompt_ids)


def collate(
    examples: Sequence[tuple[list[int], int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded batch; labels mask the prompt and the padding."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, prompt_len) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
        attention[row, : len(ids)] = 1
    return input_ids, attention, labels


def train_supervised(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    sample_weights: Sequence[float] | None = None,
    on_step: Callable[[int, float], bool | None] | None = None,
) -> list[float]:
    """AdamW with linear warm-up and cosine decay; returns the loss of every step.

    `sample_weights` (one per problem) bias which problems batches are drawn from, e.g. to
    show a student mostly easy levels. `on_step(step, loss)` may return True to stop early.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    encoded = [encode_example(tokenizer, p) for p in problems]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    losses: list[float] = []
    indices = range(len(encoded))
    for step in range(steps):
        batch = rng.choices(indices, weights=sample_weights, k=batch_size)
        input_ids, attention, labels = collate([encoded[i] for i in batch], tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if on_step is not None and on_step(step, losses[-1]):
            break
    model.eval()
    return losses

"""The toy task, and the tiny in-process models every built-in task and test builds on.

- `char_tokenizer`: one token per character (nothing is downloaded); `tiny_qwen2`: a
  randomly initialised Qwen2 of a given `ModelShape`. The arithmetic task trains these into
  its teacher and student; the tests build theirs from them.
- The toy task of the integration examples and tests: single-digit sums over a 16-token
  vocabulary (`build_tokenizer`, `build_model`, `problems`, `passes`, `accuracy`). A random
  model over it writes the right digit often enough (a few percent a character) that
  problems land in every zone after a few rollouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast, Qwen2Config

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
CHARACTERS = "0123456789+= "  # the toy task's


def char_tokenizer(characters: str, *, bos_first: bool = False) -> PreTrainedTokenizerFast:
    """Ids 0-3 for <pad> <bos> <eos> <unk>, then one per character, spaces included;
    `bos_first`: every encoded sequence starts with <bos>. Pads on the left (decoder-only
    generation)."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + tuple(characters))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    # Fuse joins tokens without the spaces WordLevel's default decoding would insert.
    core.decoder = decoders.Fuse()
    if bos_first:
        core.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int = 4
    num_key_value_heads: int = 2


def tiny_qwen2(
    shape: ModelShape,
    tokenizer: PreTrainedTokenizerFast,
    seed: int,
    max_positions: int = 128,
    **config: Any,
) -> PreTrainedModel:
    """A Qwen2 initialised from `seed` (tied embeddings; `config` overrides Qwen2Config)."""
    import torch

    qwen = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(qwen, attn_implementation="sdpa")
    generation = model.generation_config
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    return model


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- the toy task ------------------------------------------------------------------------


def build_tokenizer() -> PreTrainedTokenizerFast:
    return char_tokenizer(CHARACTERS)


def build_model(
    tokenizer: PreTrainedTokenizerFast, hidden: int = 32, layers: int = 1, seed: int = 0
) -> PreTrainedModel:
    return tiny_qwen2(ModelShape(hidden, 2 * hidden, layers, 2, 1), tokenizer, seed, 64)


def problems(n: int = 24) -> list[dict[str, str]]:
    """Rows with the columns the integrations use: problem_id, prompt, answer."""
    pairs = [(a, b) for a in range(10) for b in range(10) if a + b < 10][:n]
    return [
        {"problem_id": f"sum-{a}-{b}", "prompt": f"{a}+{b}=", "answer": str(a + b)}
        for a, b in pairs
    ]


def passes(completion: str, answer: str | None) -> bool:
    """The answer's digit among the first characters of the completion (a lenient toy check)."""
    return answer is not None and answer in re.sub(r"\D", "", completion)[:2]


def accuracy(completions: list[str], answer: list[str], **_: object) -> list[float]:
    """A GRPO reward function over the `answer` column: 1.0 when the completion passes."""
    return [1.0 if passes(c, a) else 0.0 for c, a in zip(completions, answer, strict=True)]

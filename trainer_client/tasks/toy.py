"""A toy task built in-process for the integration examples and tests: single-digit sums,
a character tokenizer over digits, and tiny randomly initialised Qwen2 models (no download).

A random model over this 16-token vocabulary writes the right digit often enough (a few
percent a character) that problems land in every zone after a few rollouts.
"""

from __future__ import annotations

import re

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast, Qwen2Config

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
CHARACTERS = "0123456789+= "


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate((PAD, BOS, EOS, UNK, *CHARACTERS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def build_model(
    tokenizer: PreTrainedTokenizerFast, hidden: int = 32, layers: int = 1, seed: int = 0
):
    import torch

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model: PreTrainedModel = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


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

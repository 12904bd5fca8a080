"""The task's character-level tokenizer (tasks/toy.py's, built in-process: no hub download)."""

from __future__ import annotations

import string
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from trainer_client.tasks.toy import char_tokenizer

# Everything the task writes, plus lowercase letters and a little punctuation so prompts can
# grow new skills without a new vocabulary.
CHARACTERS = string.digits + string.ascii_lowercase + " +-*=:,.;()|?"


def build_tokenizer() -> PreTrainedTokenizerFast:
    # Every sequence starts with <bos>, so prompts encoded by any caller match training data.
    return char_tokenizer(CHARACTERS, bos_first=True)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    tokenizer.save_pretrained(str(directory))


def load_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)

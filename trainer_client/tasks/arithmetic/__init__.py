"""Built-in synthetic task for the CPU PACED distillation demo (addition with worked steps)."""

from trainer_client.tasks.arithmetic.build import TaskArtifacts, load_model, prepare
from trainer_client.tasks.arithmetic.config import TaskConfig, full_config, quick_config
from trainer_client.tasks.arithmetic.evaluation import evaluate, sample_pass_rates, zone_shares
from trainer_client.tasks.arithmetic.problems import (
    Problem,
    final_answer,
    is_correct,
    make_problems,
    make_splits,
    read_jsonl,
    reference_response,
)
from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer, load_tokenizer

__all__ = [
    "Problem",
    "TaskArtifacts",
    "TaskConfig",
    "build_tokenizer",
    "evaluate",
    "final_answer",
    "full_config",
    "is_correct",
    "load_model",
    "load_tokenizer",
    "make_problems",
    "make_splits",
    "prepare",
    "quick_config",
    "read_jsonl",
    "reference_response",
    "sample_pass_rates",
    "zone_shares",
]

"""Tests against the real vLLM (CPU build in CI). They run in the vLLM environment:

    make vllm-env && make test-vllm      # .venv-vllm/bin/pytest -m vllm tests/vllm

Without vLLM they skip, unless PACED_VLLM_REQUIRED=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CHARS = list("0123456789+-=? abcdefghijklmnopqrstuvwxyz")
SPECIALS = ["<pad>", "<eos>"]


# Before vLLM is imported anywhere: no usage reports (CI has no network), small KV cache.
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session", autouse=True)
def vllm_installed():
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        if os.environ.get("PACED_VLLM_REQUIRED") == "1":
            pytest.fail(f"vLLM is not importable but PACED_VLLM_REQUIRED=1 ({error})")
        pytest.skip("vLLM is not installed here: make vllm-env && make test-vllm")


def char_tokenizer() -> transformers.PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIALS + CHARS)}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="?"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), "isolated")
    core.decoder = tokenizers.decoders.Fuse()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>"
    )


def tiny_qwen2(tokenizer, seed: int, *, hidden: int = 128, heads: int = 2, kv_heads: int = 1):
    """A random tiny Qwen2 (tied embeddings, like the task's). initializer_range 0.3 instead
    of 0.02: near-zero weights make every model repeat the prompt's last token, and then
    "the outputs follow the new weights" would prove nothing."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        initializer_range=0.3,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def greedy_reference(
    model, tokenizer, prompts: list[str], max_new_tokens: int, add_special_tokens: bool = False
) -> list[list[int]]:
    """transformers' greedy token ids, one prompt at a time (no padding effects). vLLM adds
    the tokenizer's special tokens to text prompts: pass add_special_tokens=True for a
    tokenizer that has some (the task's adds <bos>)."""
    from trainer_client.trainer.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(
        model, tokenizer, batch_size=1, add_special_tokens=add_special_tokens
    )
    groups = engine.generate(prompts, 1, seed=0, max_new_tokens=max_new_tokens, temperature=0)
    return [group[0].token_ids for group in groups]


def task_config(seed: int = 0):
    """The built-in task, cut down until it builds in well under a minute on 2 cores: the
    point here is the plumbing, not the student's skill."""
    from trainer_client.tasks.arithmetic.config import quick_config
    from trainer_client.tasks.toy import ModelShape

    return replace(
        quick_config(seed),
        levels=2,
        train_per_level=200,
        pool_per_level=8,
        eval_per_level=8,
        heldout_train=50,
        heldout_eval=8,
        # Good enough that reference verification keeps the pool (80 steps left 2 of 16).
        teacher=ModelShape(64, 192, 2),
        teacher_steps=800,
        teacher_lr=4e-3,
        student=ModelShape(64, 192, 2),
        student_steps=60,
        student_level_weights=(1.0,),
        k=2,
    )


@pytest.fixture(scope="package")
def task(tmp_path_factory):
    from trainer_client.tasks.arithmetic import prepare
    from trainer_client.tasks.arithmetic.bundle import load_task_bundle

    directory = tmp_path_factory.mktemp("task")
    started = time.perf_counter()
    prepare(directory, config=task_config())
    print(f"\ntask built in {time.perf_counter() - started:.1f} s")
    return directory, load_task_bundle(directory)


def run_train_cli(argv: list[str], workdir, capsys, note: str = "") -> dict:
    """`paced train ARGV` in this process (inside the caller's service context); prints the
    command and its output, returns the run's summary.json."""
    from trainer_client.cli.main import main

    started = time.perf_counter()
    assert main(argv) == 0
    wall = time.perf_counter() - started
    output = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n$ paced {' '.join(argv)}\n{output}(wall {wall:.1f} s{note})")
    return json.loads((workdir / "summary.json").read_text())


def problems_rolled_out(summary: dict, pool: int, refresh_size: int = 4) -> int:
    """Problems the run rolled out: the initial and the final full-pool estimates, and each
    refresh (scheduled, or after a 409 when nothing was eligible) re-rolls up to
    refresh_size of them."""
    assert summary["refreshes"] >= 1
    return 2 * pool + min(refresh_size, pool) * summary["refreshes"]

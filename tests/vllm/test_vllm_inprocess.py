"""VLLMEngine against the real vLLM engine (CPU build), on a tiny Qwen2 saved to disk.

One engine for the whole module (starting one takes ~30-60 s on 2 cores).
"""

from __future__ import annotations

import time

import pytest

from tests.vllm.conftest import char_tokenizer, greedy_reference, tiny_qwen2
from trainer_client.trainer.engines import Completion, RolloutEngine
from trainer_client.trainer.engines.vllm_checkpoint import ExportPlan

pytestmark = pytest.mark.vllm

PROMPTS = ["1+2=", "abc", "7-3=", "hello"]
MAX_NEW = 12


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer()


@pytest.fixture(scope="module")
def models(tokenizer):
    return {"old": tiny_qwen2(tokenizer, seed=0), "new": tiny_qwen2(tokenizer, seed=1)}


@pytest.fixture(scope="module")
def engine(models, tokenizer, tmp_path_factory):
    from trainer_client.trainer.engines.vllm_engine import VLLMEngine

    source = tmp_path_factory.mktemp("student")
    models["old"].save_pretrained(source)
    tokenizer.save_pretrained(source)
    started = time.perf_counter()
    engine = VLLMEngine(source, seed=0, workdir=tmp_path_factory.mktemp("vllm"), max_model_len=256)
    print(f"\nvLLM engine start: {time.perf_counter() - started:.1f} s")
    yield engine
    engine.close()


def test_tied_checkpoint_is_served_from_an_untied_export(engine):
    # Reloading a tied checkpoint gives wrong outputs in vLLM 0.32 (vllm_checkpoint.py).
    assert engine.plan == ExportPlan("qwen2", 64, 2, 1, pad_factor=1, tied=True)
    assert engine.model_dir.name == "vllm-model"
    assert engine.llm.llm_engine.vllm_config.model_config.hf_config.tie_word_embeddings is False


def test_engine_tokenizes_prompts_like_the_student_tokenizer(engine, tokenizer):
    # Spaces and characters outside the vocabulary: a Qwen2Tokenizer substituted for the
    # char tokenizer drops both (why exports keep the tokenizer in a subdirectory).
    prompt = "12 + 34 = ;x"
    params = engine._sampling_params(n=1, temperature=0, max_tokens=1)
    output = engine.llm.generate([prompt], params, use_tqdm=False)[0]
    assert output.prompt_token_ids == tokenizer(prompt)["input_ids"]


def test_k_completions_per_prompt_with_token_ids(engine, tokenizer):
    assert isinstance(engine, RolloutEngine)
    groups = engine.generate(PROMPTS, 4, seed=7, max_new_tokens=MAX_NEW)
    assert [len(group) for group in groups] == [4] * len(PROMPTS)
    eos = tokenizer.eos_token_id
    for group in groups:
        for completion in group:
            assert isinstance(completion, Completion)
            ids = completion.token_ids
            assert 1 <= len(ids) <= MAX_NEW
            assert eos not in ids[:-1]  # it stops at the first eos (kept, like transformers)
            assert tokenizer.decode(ids, skip_special_tokens=True) == completion.text
    # Sampling at T=1 from a random model: the 4 samples of a prompt are not all the same.
    assert any(len({tuple(c.token_ids) for c in group}) > 1 for group in groups)


def test_same_seed_same_completions_other_seed_differs(engine):
    first = engine.generate(PROMPTS, 3, seed=11, max_new_tokens=MAX_NEW)
    again = engine.generate(PROMPTS, 3, seed=11, max_new_tokens=MAX_NEW)
    other = engine.generate(PROMPTS, 3, seed=12, max_new_tokens=MAX_NEW)
    assert first == again
    assert first != other


def test_prompts_get_distinct_streams_spaced_by_k(engine):
    k, seed = 3, 40
    # The same prompt twice in one call: with seeds spaced by k the two groups differ...
    twice = engine.generate(["1+2=", "1+2="], k, seed=seed, max_new_tokens=MAX_NEW)
    assert twice[0] != twice[1]
    # ...and the second prompt's group is exactly what a call seeded base + k gives.
    alone = engine.generate(["1+2="], k, seed=seed + k, max_new_tokens=MAX_NEW)
    assert twice[1] == alone[0]


def test_weight_sync_makes_greedy_outputs_equal_transformers_new_weights(engine, models, tokenizer):
    old_ref = greedy_reference(models["old"], tokenizer, PROMPTS, MAX_NEW)
    new_ref = greedy_reference(models["new"], tokenizer, PROMPTS, MAX_NEW)
    assert old_ref != new_ref  # the two students really behave differently

    def greedy():
        groups = engine.generate(PROMPTS, 2, seed=0, max_new_tokens=MAX_NEW, temperature=0)
        assert all(group[0] == group[1] for group in groups)  # greedy: k identical samples
        return [group[0].token_ids for group in groups]

    assert greedy() == old_ref
    started = time.perf_counter()
    engine.load_weights(models["new"])  # a module
    print(f"\nweight sync: {time.perf_counter() - started:.3f} s")
    assert greedy() == new_ref
    engine.load_weights(dict(models["old"].state_dict()))  # a state dict works too
    assert greedy() == old_ref


def test_weight_sync_resets_the_prefix_cache(engine, models, tokenizer):
    """A long shared prompt fills whole KV blocks, which the prefix cache keeps. If a sync
    did not drop them, the next request would reuse KV computed by the old weights."""
    config = engine.llm.llm_engine.vllm_config.cache_config
    assert config.enable_prefix_caching  # otherwise this test would prove nothing
    prompt = ("12+34=46 " * 40)[: config.block_size + 9]
    assert len(prompt) + MAX_NEW < 256  # the model's context
    engine.load_weights(models["old"])
    engine.generate([prompt], 1, seed=0, max_new_tokens=4, temperature=0)  # fills the cache
    calls = []
    original = engine.llm.reset_prefix_cache
    engine.llm.reset_prefix_cache = lambda: calls.append("reset") or original()
    try:
        engine.load_weights(models["new"])
    finally:
        engine.llm.reset_prefix_cache = original
    assert calls == ["reset"]
    got = engine.generate([prompt], 1, seed=0, max_new_tokens=MAX_NEW, temperature=0)
    assert got[0][0].token_ids == greedy_reference(models["new"], tokenizer, [prompt], MAX_NEW)[0]

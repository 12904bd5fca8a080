"""TransformersEngine on a tiny random Qwen2 with a character-level tokenizer (tasks/toy.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from trainer_client.tasks.toy import ModelShape, char_tokenizer, tiny_qwen2  # noqa: E402
from trainer_client.trainer.engines import Completion, RolloutEngine, TransformersEngine  # noqa: E402

CHARS = "0123456789+-=? abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    # Tiny tensors: a second intra-op thread only adds synchronisation, and on a busy 2-core
    # CI machine OpenMP spin-waiting made these tests ~30x slower. Restored afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_model(tokenizer, seed: int):
    # Random init is near-uniform over ~45 tokens: samples vary, and eos (1 in 45) comes up
    # often enough within a few dozen sampled tokens to exercise stopping.
    return tiny_qwen2(ModelShape(32, 64, 2), tokenizer, seed)


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer(CHARS)


@pytest.fixture
def engine(tokenizer):
    return TransformersEngine(tiny_model(tokenizer, seed=0), tokenizer, batch_size=8)


PROMPTS = ["1+1=", "12+30=", "7-2="]


def texts(groups):
    return [[c.text for c in group] for group in groups]


def test_k_completions_per_prompt_with_consistent_ids_and_text(engine, tokenizer):
    out = engine.generate(PROMPTS, 4, seed=1, max_new_tokens=6)
    assert isinstance(engine, RolloutEngine)
    assert len(out) == len(PROMPTS) and all(len(group) == 4 for group in out)
    eos = tokenizer.eos_token_id
    for group in out:
        for completion in group:
            assert isinstance(completion, Completion)
            assert 1 <= len(completion.token_ids) <= 6
            # Nothing follows an eos; the text is the decoded ids without special tokens.
            assert eos not in completion.token_ids[:-1]
            assert completion.text == tokenizer.decode(
                completion.token_ids, skip_special_tokens=True
            )


def test_same_seed_reproduces_and_other_seed_differs(engine):
    first = engine.generate(PROMPTS, 3, seed=7, max_new_tokens=8)
    torch.manual_seed(12345)  # the caller's RNG state must not matter ...
    again = engine.generate(PROMPTS, 3, seed=7, max_new_tokens=8)
    other = engine.generate(PROMPTS, 3, seed=8, max_new_tokens=8)
    assert texts(first) == texts(again)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in again]
    assert texts(first) != texts(other)
    # ... and the engine must not consume the caller's RNG stream.
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    engine.generate(PROMPTS, 2, seed=3, max_new_tokens=4)
    assert torch.equal(torch.rand(3), expected)


def test_samples_within_a_prompt_vary_and_greedy_repeats(engine):
    sampled = engine.generate(["1+1="], 6, seed=0, max_new_tokens=8)[0]
    assert len({c.text for c in sampled}) > 1
    greedy = engine.generate(["1+1=", "7-2="], 3, seed=0, max_new_tokens=8, temperature=0)
    for group in greedy:
        assert len({tuple(c.token_ids) for c in group}) == 1
    assert texts(greedy) == texts(
        engine.generate(["1+1=", "7-2="], 3, seed=99, max_new_tokens=8, temperature=0)
    )


def test_batching_splits_prompts_but_keeps_order(tokenizer):
    # batch_size=4 with k=3 -> one prompt per generate call; each prompt's group must still
    # be its own continuation (greedy makes it comparable with an unbatched call).
    model = tiny_model(tokenizer, seed=0)
    small = TransformersEngine(model, tokenizer, batch_size=4)
    many = ["1+1=", "99-9=", "3="]
    grouped = small.generate(many, 3, seed=0, max_new_tokens=5, temperature=0)
    alone = [small.generate([p], 1, seed=0, max_new_tokens=5, temperature=0)[0] for p in many]
    assert [g[0].token_ids for g in grouped] == [a[0].token_ids for a in alone]


def test_stops_at_eos(engine, tokenizer):
    out = engine.generate(PROMPTS, 8, seed=0, max_new_tokens=12)
    flat = [c for group in out for c in group]
    stopped = [c for c in flat if c.token_ids[-1] == tokenizer.eos_token_id]
    assert stopped, "no sample stopped; the check below would be vacuous"
    # Every sequence either used the whole budget or ended with eos (no padding kept).
    assert all(len(c.token_ids) == 12 or c.token_ids[-1] == tokenizer.eos_token_id for c in flat)
    assert any(len(c.token_ids) < 12 for c in stopped)
    assert all("<eos>" not in c.text and "<pad>" not in c.text for c in flat)


def test_load_weights_makes_outputs_match_the_source_model(tokenizer):
    engine = TransformersEngine(tiny_model(tokenizer, seed=0), tokenizer)
    source = tiny_model(tokenizer, seed=1)
    reference = TransformersEngine(tiny_model(tokenizer, seed=1), tokenizer)
    kwargs = {"seed": 5, "max_new_tokens": 8}
    before = engine.generate(PROMPTS, 3, **kwargs)
    expected = reference.generate(PROMPTS, 3, **kwargs)
    assert texts(before) != texts(expected)

    engine.load_weights(source)
    assert texts(engine.generate(PROMPTS, 3, **kwargs)) == texts(expected)

    # A wrapped (DDP-style) state dict of the original weights restores the old outputs.
    original = tiny_model(tokenizer, seed=0).state_dict()
    engine.load_weights({f"module.{name}": value for name, value in original.items()})
    assert texts(engine.generate(PROMPTS, 3, **kwargs)) == texts(before)


def test_load_weights_rejects_foreign_keys(engine):
    state = engine.model.state_dict()
    with pytest.raises(KeyError):
        engine.load_weights({**state, "extra.weight": torch.zeros(1)})
    partial = {k: v for k, v in state.items() if "layers.1." not in k}
    with pytest.raises(KeyError):
        engine.load_weights(partial)


def test_generate_restores_training_mode_and_validates(engine):
    engine.model.train()
    engine.generate(["1="], 1, seed=0, max_new_tokens=2)
    assert engine.model.training
    assert engine.generate([], 3, seed=0, max_new_tokens=2) == []
    with pytest.raises(ValueError):
        engine.generate(["1="], 0, seed=0, max_new_tokens=2)
    with pytest.raises(TypeError):
        engine.generate("1=", 1, seed=0, max_new_tokens=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_itself_and_returns_cpu_lists(tokenizer):
    engine = TransformersEngine(tiny_model(tokenizer, seed=0), tokenizer, device="cuda")
    first = engine.generate(PROMPTS, 4, seed=1, max_new_tokens=6)
    assert texts(first) == texts(engine.generate(PROMPTS, 4, seed=1, max_new_tokens=6))
    assert all(isinstance(t, int) for g in first for c in g for t in c.token_ids)
    engine.load_weights(tiny_model(tokenizer, seed=1))  # CPU weights into a CUDA model
    assert next(engine.model.parameters()).device.type == "cuda"

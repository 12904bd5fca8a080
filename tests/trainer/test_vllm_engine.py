"""VLLMEngine: what can be checked without vLLM, plus a real-vLLM test that skips here.

vLLM is not installable in this environment, so the request building and weight-sync logic
are exercised against a small stand-in ``vllm`` module that records what the engine asks
for (it mimics the documented API: LLM, SamplingParams, RequestOutput.outputs).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from trainer_client.engines.base import Completion
from trainer_client.engines.vllm_engine import VLLM_MISSING, VLLMEngine, spaced_seeds


def test_missing_vllm_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ImportError, match=r"pip install paced\[vllm\]") as info:
        VLLMEngine("/nonexistent", seed=0)
    assert str(info.value) == VLLM_MISSING


@pytest.mark.parametrize(("num_prompts", "k"), [(1, 1), (5, 1), (4, 8), (7, 3)])
def test_spaced_seeds_never_collide_across_children(num_prompts, k):
    seeds = spaced_seeds(100, num_prompts, k)
    assert seeds[0] == 100 and len(seeds) == num_prompts
    # vLLM gives child j of a request seed + j: all children's seeds must be distinct.
    children = [s + j for s in seeds for j in range(k)]
    assert len(set(children)) == num_prompts * k
    assert children == list(range(100, 100 + num_prompts * k))


def test_spaced_seeds_rejects_bad_k():
    with pytest.raises(ValueError):
        spaced_seeds(0, 3, 0)


# --- stand-in vllm module -------------------------------------------------------------------


@dataclass
class FakeSamplingParams:
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int


@dataclass
class FakeOutput:
    text: str
    token_ids: tuple[int, ...]


@dataclass
class FakeRequestOutput:
    outputs: list[FakeOutput]


@dataclass
class FakeModel:
    loaded: list = field(default_factory=list)
    fail: bool = False

    def load_weights(self, weights):
        if self.fail:
            raise RuntimeError("shape mismatch")
        self.loaded.append(list(weights))


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.events: list[str] = []
        self.model = FakeModel()
        FakeLLM.instances.append(self)

    def generate(self, prompts, params, use_tqdm=True):
        assert len(prompts) == len(params)
        self.last_params = params
        return [
            FakeRequestOutput(
                [FakeOutput(f"{p}|{sp.seed + j}", (sp.seed + j, 2)) for j in range(sp.n)]
            )
            for p, sp in zip(prompts, params, strict=True)
        ]

    def apply_model(self, fn):
        self.events.append("apply_model")
        return [fn(self.model)]

    def reset_prefix_cache(self):
        self.events.append("reset_prefix_cache")


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    return module


def test_generate_builds_one_request_per_prompt_with_spaced_seeds(fake_vllm):
    engine = VLLMEngine("/models/student", seed=3, gpu_memory_utilization=0.3, dtype="bfloat16")
    llm = FakeLLM.instances[-1]
    assert llm.kwargs == {
        "model": "/models/student",
        "seed": 3,
        "gpu_memory_utilization": 0.3,
        "dtype": "bfloat16",
    }
    out = engine.generate(["a", "b", "c"], 4, seed=10, max_new_tokens=7, top_p=0.9)
    assert [p.seed for p in llm.last_params] == [10, 14, 18]
    assert {(p.n, p.temperature, p.top_p, p.max_tokens) for p in llm.last_params} == {
        (4, 1.0, 0.9, 7)
    }
    assert out[1][2] == Completion(text="b|16", token_ids=[16, 2])
    assert [len(group) for group in out] == [4, 4, 4]
    assert engine.generate([], 4, seed=0, max_new_tokens=1) == []


def test_load_weights_uses_the_driver_model_and_resets_the_cache(fake_vllm):
    engine = VLLMEngine("/m", seed=0)
    llm = engine.llm
    # Expose the model the way an in-process (driver worker) engine does.
    worker = types.SimpleNamespace(model_runner=types.SimpleNamespace(model=llm.model))
    llm.llm_engine = types.SimpleNamespace(
        model_executor=types.SimpleNamespace(driver_worker=types.SimpleNamespace(worker=worker))
    )
    engine.load_weights({"module.w": 1, "b": 2})
    assert llm.model.loaded == [[("w", 1), ("b", 2)]]
    assert llm.events == ["reset_prefix_cache"]


def test_load_weights_falls_back_to_apply_model_and_always_resets(fake_vllm):
    engine = VLLMEngine("/m", seed=0)
    llm = engine.llm
    engine.load_weights([("w", 1)])
    assert llm.model.loaded == [[("w", 1)]]
    assert llm.events == ["apply_model", "reset_prefix_cache"]

    llm.model.fail = True
    with pytest.raises(RuntimeError, match="shape mismatch"):
        engine.load_weights([("w", 2)])
    assert llm.events[-1] == "reset_prefix_cache"


# --- real vLLM (skips unless vllm and a GPU are available) ----------------------------------


def test_real_vllm_generates_reproducibly(tmp_path):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    import tokenizers
    import transformers

    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", *"0123456789+-= abc"])}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), "isolated")
    core.decoder = tokenizers.decoders.Fuse()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>"
    )
    config = transformers.Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=1,
        pad_token_id=0,
    )
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    engine = VLLMEngine(str(tmp_path), seed=0, gpu_memory_utilization=0.2, enforce_eager=True)
    first = engine.generate(["1+1=", "2+2="], 3, seed=5, max_new_tokens=8)
    again = engine.generate(["1+1=", "2+2="], 3, seed=5, max_new_tokens=8)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in again]
    assert [len(g) for g in first] == [3, 3]

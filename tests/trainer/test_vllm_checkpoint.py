"""vLLM exports are equivalent to their source (checked with transformers, no vLLM needed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer  # noqa: E402
from trainer_client.trainer.engines.vllm_checkpoint import (  # noqa: E402
    LM_HEAD_KEY,
    ExportPlan,
    export_for_vllm,
    export_state_dict,
    load_tokenizer,
    tokenizer_dir,
)


def qwen2(hidden: int, heads: int, kv_heads: int, tied: bool = True):
    torch.manual_seed(hidden + heads)
    config = transformers.Qwen2Config(
        vocab_size=60,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
        initializer_range=0.3,
    )
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # q/k/v biases start at zero: make them matter
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.3)
    return model


@pytest.mark.parametrize(
    ("hidden", "heads", "kv_heads", "pad", "architecture"),
    [
        (64, 4, 2, 2, "LlamaForCausalLM"),  # the quick task's student: head size 16 -> 32
        (80, 4, 2, 4, "LlamaForCausalLM"),  # the full task's student: 20 -> 80
        (128, 2, 1, 1, "Qwen2ForCausalLM"),  # head size 64 is supported: only untied
    ],
)
def test_export_computes_the_same_logits(tmp_path, hidden, heads, kv_heads, pad, architecture):
    source = qwen2(hidden, heads, kv_heads)
    plan = export_for_vllm(source, build_tokenizer(), tmp_path)
    assert plan.pad_factor == pad and plan.tied
    exported = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(exported).__name__ == architecture
    assert exported.config.tie_word_embeddings is False
    ids = torch.randint(0, 60, (2, 40))
    with torch.no_grad():
        expected, got = source(ids).logits, exported(ids).logits
    assert expected.abs().max() > 1  # not a near-zero model that anything would match
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert ExportPlan.load(tmp_path) == plan


def test_sync_weights_follow_the_plan_and_untie(tmp_path):
    source = qwen2(64, 4, 2)
    plan = ExportPlan.for_config(source.config)
    weights = export_state_dict({f"module.{k}": v for k, v in source.state_dict().items()}, plan)
    assert weights["model.layers.0.self_attn.q_proj.weight"].shape == (4 * 32, 64)
    assert weights["model.layers.0.self_attn.o_proj.weight"].shape == (64, 4 * 32)
    assert weights["model.layers.0.self_attn.o_proj.bias"].abs().sum() == 0
    assert torch.equal(weights[LM_HEAD_KEY], weights["model.embed_tokens.weight"])
    assert weights[LM_HEAD_KEY].data_ptr() != weights["model.embed_tokens.weight"].data_ptr()


def test_tokenizer_keeps_its_class_next_to_a_model_config(tmp_path):
    # Next to a Qwen2 config, AutoTokenizer would load a Qwen2Tokenizer that drops spaces.
    tokenizer = build_tokenizer()
    export_for_vllm(qwen2(64, 4, 2), tokenizer, tmp_path)
    tokenizer.save_pretrained(tmp_path)  # as a checkpoint saved by hand would be
    text = "what is 12 + 34 ?"
    assert load_tokenizer(tmp_path)(text)["input_ids"] == tokenizer(text)["input_ids"]
    exported = load_tokenizer(tokenizer_dir(tmp_path))
    assert exported(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_unpaddable_configs_are_refused():
    config = transformers.Qwen2Config(hidden_size=36, num_attention_heads=4)  # head size 9
    with pytest.raises(ValueError, match="odd head size"):
        ExportPlan.for_config(config)

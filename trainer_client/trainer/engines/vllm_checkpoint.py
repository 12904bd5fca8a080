"""Student checkpoints that vLLM can serve and reload: untied, and with a head size it supports.

Two facts about vLLM 0.32 (checked with the CPU build) decide the format:

1. Weight sync reloads the checkpoint in place (``reload_weights``, see vllm_engine.py). With
   tied input/output embeddings that reload gives wrong outputs (the output projection keeps
   stale weights), while the same weights in an untied checkpoint reload exactly. So exports
   are always untied: ``lm_head.weight`` is written as a copy of the input embedding.
2. Its attention kernels take only some head sizes (CPU: 32, 64, 80, ..., 256), and tiny
   students such as the built-in task's (hidden 64, 4 heads: head size 16) are below them.
   Such a Qwen2/Llama model is exported as an *equivalent* Llama model with every head
   zero-padded by an integer factor m (head size m*d, the smallest supported one):
   - q/k/v rows and o_proj columns of each head move to new positions, and the padding is
     zero, so q.k, the attention weights and the output are unchanged;
   - rotary embeddings pair dim j with j + D/2 at frequency theta^(-2j/D); sending the
     source's dim j to m*j (and j + d/2 to m*j + D/2) keeps every pair's frequency
     (theta^(-2mj/(md)) = theta^(-2j/d));
   - the softmax scale 1/sqrt(D) is m^-1/2 times the source's, so q is scaled by sqrt(m).
   Llama is used because vLLM's Qwen2 derives the head size from hidden/heads, while Llama
   reads ``head_dim`` from the config; Qwen2's q/k/v biases map onto Llama's attention_bias
   (o_proj gets a zero bias). The export loads in transformers too, which is how the tests
   check the equivalence.

``ExportPlan`` records how a source maps to its export, so weight syncs apply the same
conversion to each new state dict; it is written next to the export (paced_vllm_export.json).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

# Head sizes vLLM's CPU attention accepts (vllm/v1/attention/backends/cpu_attn.py, 0.32);
# GPU backends accept all of these too.
SUPPORTED_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)
PLAN_FILE = "paced_vllm_export.json"
WEIGHTS_FILE = "model.safetensors"
EMBED_KEY = "model.embed_tokens.weight"
LM_HEAD_KEY = "lm_head.weight"
# The tokenizer goes into a subdirectory without a config.json: next to a Qwen2 config,
# transformers 5's AutoTokenizer (and so vLLM) swaps a generic tokenizer.json tokenizer for
# Qwen2Tokenizer, whose pre-tokenizer silently dropped spaces and unknown characters of a
# character-level vocabulary. Give vLLM this directory as its tokenizer.
TOKENIZER_DIR = "tokenizer"
_PADDABLE = ("qwen2", "llama")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class ExportPlan:
    model_type: str  # the source's
    head_dim: int  # the source's
    num_heads: int
    num_kv_heads: int
    pad_factor: int  # 1: heads kept as they are
    tied: bool  # the source ties lm_head to the input embedding

    @property
    def is_identity(self) -> bool:
        """The source's own checkpoint can be served and reloaded unchanged."""
        return self.pad_factor == 1 and not self.tied

    @classmethod
    def for_config(cls, config: Any) -> ExportPlan:
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        pad = 1
        if head_dim not in SUPPORTED_HEAD_SIZES:
            if config.model_type not in _PADDABLE:
                raise ValueError(
                    f"head size {head_dim} is not one vLLM supports {SUPPORTED_HEAD_SIZES}, and "
                    f"padding is only implemented for {_PADDABLE}, not {config.model_type!r}"
                )
            rope = getattr(config, "rope_parameters", None) or {"rope_type": "default"}
            if rope.get("rope_type", "default") != "default" or rope.get("partial_rotary_factor"):
                raise ValueError(f"cannot pad heads under rope parameters {rope}")
            if head_dim % 2:
                raise ValueError(f"cannot pad an odd head size ({head_dim})")
            pad = next(
                (size // head_dim for size in SUPPORTED_HEAD_SIZES if size % head_dim == 0), 0
            )
            if pad == 0:
                raise ValueError(f"no supported head size is a multiple of {head_dim}")
        return cls(
            model_type=config.model_type,
            head_dim=head_dim,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            pad_factor=pad,
            tied=bool(getattr(config, "tie_word_embeddings", False)),
        )

    def save(self, directory: Path) -> None:
        (directory / PLAN_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> ExportPlan | None:
        path = Path(directory) / PLAN_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def export_config(config: Any, plan: ExportPlan) -> Any:
    """The config vLLM loads: the source's, untied; an equivalent Llama one when padded."""
    if plan.pad_factor == 1:
        exported = config.__class__.from_dict(config.to_dict())
        exported.tie_word_embeddings = False
        return exported
    from transformers import LlamaConfig

    rope = dict(getattr(config, "rope_parameters", None) or {})
    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=plan.num_heads,
        num_key_value_heads=plan.num_kv_heads,
        head_dim=plan.head_dim * plan.pad_factor,
        hidden_act=config.hidden_act,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps,
        rope_parameters=rope or None,
        # Qwen2 always has q/k/v biases; Llama's switch also adds an o_proj bias (zero here).
        attention_bias=plan.model_type == "qwen2" or bool(getattr(config, "attention_bias", 0)),
        mlp_bias=bool(getattr(config, "mlp_bias", False)),
        tie_word_embeddings=False,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )


def _named_tensors(source: Any) -> Iterable[tuple[str, torch.Tensor]]:
    if isinstance(source, torch.nn.Module):
        return source.state_dict().items()
    if isinstance(source, Mapping):
        return source.items()
    return source


def _head_positions(plan: ExportPlan) -> torch.Tensor:
    half, m = plan.head_dim // 2, plan.pad_factor
    first = [m * j for j in range(half)]
    return torch.tensor(first + [p + m * half for p in first])


def _pad_rows(tensor: torch.Tensor, heads: int, plan: ExportPlan, scale: float) -> torch.Tensor:
    # q/k/v weight (heads*d, hidden) or bias (heads*d,): each head's d rows spread over m*d.
    d, padded = plan.head_dim, plan.head_dim * plan.pad_factor
    rest = tensor.shape[1:]
    grouped = tensor.reshape(heads, d, *rest)
    out = grouped.new_zeros(heads, padded, *rest)
    out[:, _head_positions(plan)] = grouped * scale
    return out.reshape(heads * padded, *rest)


def _pad_columns(tensor: torch.Tensor, plan: ExportPlan) -> torch.Tensor:
    # o_proj weight (hidden, heads*d): its input columns follow the v rows' positions.
    d, padded = plan.head_dim, plan.head_dim * plan.pad_factor
    hidden = tensor.shape[0]
    grouped = tensor.reshape(hidden, plan.num_heads, d)
    out = grouped.new_zeros(hidden, plan.num_heads, padded)
    out[:, :, _head_positions(plan)] = grouped
    return out.reshape(hidden, plan.num_heads * padded)


def export_state_dict(source: Any, plan: ExportPlan) -> dict[str, torch.Tensor]:
    """The source's weights (a module, a state dict or (name, tensor) pairs) in export layout:
    contiguous CPU tensors, one per name, wrapper prefixes removed."""
    q_scale = math.sqrt(plan.pad_factor)
    out: dict[str, torch.Tensor] = {}
    for raw_name, tensor in _named_tensors(source):
        name = raw_name
        for prefix in _WRAPPER_PREFIXES:
            name = name.removeprefix(prefix)
        if name == LM_HEAD_KEY and plan.tied:
            continue  # written below from the embedding, which is what the source computes with
        value = tensor.detach().to("cpu")
        if plan.pad_factor > 1:
            if ".q_proj." in name:
                value = _pad_rows(value, plan.num_heads, plan, q_scale)
            elif ".k_proj." in name or ".v_proj." in name:
                value = _pad_rows(value, plan.num_kv_heads, plan, 1.0)
            elif name.endswith(".o_proj.weight"):
                value = _pad_columns(value, plan)
        out[name] = value.contiguous()
    if plan.tied:
        if EMBED_KEY not in out:
            raise KeyError(f"tied weights need {EMBED_KEY!r} in the source")
        out[LM_HEAD_KEY] = out[EMBED_KEY].clone()
    if plan.pad_factor > 1 and plan.model_type == "qwen2":
        for name in [n for n in out if n.endswith(".o_proj.weight")]:
            bias = name.removesuffix("weight") + "bias"
            out.setdefault(bias, out[name].new_zeros(out[name].shape[0]))
    return out


def write_weights(source: Any, plan: ExportPlan, directory: str | Path) -> Path:
    """Write the export-layout weights as one safetensors file (atomically: a reader never
    sees a half-written file); returns its path."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / WEIGHTS_FILE
    partial = directory / f".{WEIGHTS_FILE}.partial"
    save_file(export_state_dict(source, plan), str(partial), metadata={"format": "pt"})
    os.replace(partial, target)
    return target


def export_for_vllm(model: Any, tokenizer: Any, directory: str | Path) -> ExportPlan:
    """Write a checkpoint of `model` (a transformers causal LM) that vLLM serves and reloads
    correctly: config, generation config, weights, the plan, and the tokenizer in
    `directory/tokenizer` (pass it to vLLM as the tokenizer)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plan = ExportPlan.for_config(model.config)
    export_config(model.config, plan).save_pretrained(directory)
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory / TOKENIZER_DIR)
    write_weights(model, plan, directory)
    plan.save(directory)
    return plan


def export_checkpoint(source_dir: str | Path, directory: str | Path) -> ExportPlan:
    """export_for_vllm for a saved transformers checkpoint (its tokenizer comes along)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True)
    return export_for_vllm(model, load_tokenizer(source_dir), directory)


def load_tokenizer(directory: str | Path) -> Any:
    """Load a saved tokenizer as the class it was saved as. A generic tokenizer.json one
    (TokenizersBackend) is loaded as such even next to a model config, where transformers 5's
    AutoTokenizer would substitute the architecture's own tokenizer class (see TOKENIZER_DIR)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_path = Path(directory) / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    if config.get("tokenizer_class") in ("TokenizersBackend", "PreTrainedTokenizerFast"):
        return PreTrainedTokenizerFast.from_pretrained(directory, local_files_only=True)
    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


def servable_checkpoint(model_path: str | Path, workdir: str | Path) -> tuple[Path, ExportPlan]:
    """A directory vLLM can serve for `model_path` and the plan for syncing weights into it:
    the path itself when it is an export or needs no conversion, else a new export under
    `workdir`."""
    from transformers import AutoConfig

    model_path = Path(model_path)
    plan = ExportPlan.load(model_path)
    if plan is not None:
        return model_path, plan
    plan = ExportPlan.for_config(AutoConfig.from_pretrained(model_path, local_files_only=True))
    if plan.is_identity:
        return model_path, plan
    target = Path(workdir) / "vllm-model"
    return target, export_checkpoint(model_path, target)


def tokenizer_dir(model_dir: str | Path) -> Path | None:
    """The tokenizer directory of an export, or None (vLLM then loads the model's own)."""
    path = Path(model_dir) / TOKENIZER_DIR
    return path if path.is_dir() else None

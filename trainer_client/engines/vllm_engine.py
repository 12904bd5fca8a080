"""Rollouts with an in-process vLLM engine (GPU only; optional extra ``paced[vllm]``).

What was exercised: the seed spacing, the request building, the weight-sync fallbacks and
the always-reset-prefix-cache rule, against a stand-in ``vllm`` module in the tests (vLLM
pins torch/transformers versions that conflict with ours, so it is not installed in CI or in
the development environment). What was NOT exercised: a real vLLM ``LLM`` — the real-vLLM
test skips unless ``vllm`` and a GPU are present. API facts relied on (vLLM 0.8-0.33):
``LLM(model=..., seed=...)``, ``llm.generate(prompts, [SamplingParams, ...])`` pairing one
SamplingParams per prompt, ``RequestOutput.outputs[j].text/.token_ids``,
``llm.reset_prefix_cache()``, and either ``llm.collective_rpc``/``llm.apply_model`` or the
in-process driver worker for reaching the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainer_client.engines.base import Completion, validate_generate_args

VLLM_MISSING = (
    "VLLMEngine needs vLLM, which is not installed: pip install paced[vllm] "
    "(GPU only; it pins its own torch/transformers versions, so use a separate environment)"
)


def spaced_seeds(base_seed: int, num_prompts: int, k: int) -> list[int]:
    """Per-prompt request seeds base + i*k.

    vLLM seeds the j-th of a request's n=k children with seed + j, so consecutive per-prompt
    seeds (base + i) would give prompt i's child 1 the same stream as prompt i+1's child 0.
    Spacing by k keeps every child's seed (base + i*k + j) distinct.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    return [base_seed + i * k for i in range(num_prompts)]


def _named_tensors(model_or_state_dict: Any) -> list[tuple[str, Any]]:
    # vLLM's model.load_weights takes an iterable of (name, tensor) in HF checkpoint naming.
    if hasattr(model_or_state_dict, "state_dict") and callable(model_or_state_dict.state_dict):
        items: Iterable[tuple[str, Any]] = model_or_state_dict.state_dict().items()
    elif isinstance(model_or_state_dict, Mapping):
        items = model_or_state_dict.items()
    else:
        items = model_or_state_dict
    named = []
    for name, tensor in items:
        for prefix in ("module.", "_orig_mod."):
            name = name.removeprefix(prefix)
        named.append((name, tensor))
    return named


def _driver_model(llm: Any) -> Any | None:
    """The in-process model when vLLM runs its worker in this process (V0, or V1 with
    VLLM_ENABLE_V1_MULTIPROCESSING=0); None when it is not reachable that way."""
    paths = (
        ("llm_engine", "model_executor", "driver_worker", "worker", "model_runner", "model"),
        ("llm_engine", "model_executor", "driver_worker", "model_runner", "model"),
    )
    for path in paths:
        node = llm
        for attr in path:
            node = getattr(node, attr, None)
            if node is None:
                break
        if node is not None and hasattr(node, "load_weights"):
            return node
    return None


class VLLMEngine:
    """``RolloutEngine`` over ``vllm.LLM``. Extra keyword arguments go to ``LLM``."""

    def __init__(
        self,
        model_path: str,
        *,
        seed: int,
        gpu_memory_utilization: float = 0.5,
        dtype: str = "auto",
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as error:
            raise ImportError(VLLM_MISSING) from error
        self._sampling_params = vllm.SamplingParams
        self.llm = vllm.LLM(
            model=model_path,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            **llm_kwargs,
        )

    def generate(
        self,
        prompts: list[str],
        k: int,
        *,
        seed: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> list[list[Completion]]:
        validate_generate_args(prompts, k, max_new_tokens, temperature, top_p)
        if not prompts:
            return []
        params = [
            self._sampling_params(
                n=k,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                seed=prompt_seed,
            )
            for prompt_seed in spaced_seeds(seed, len(prompts), k)
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            [Completion(text=o.text, token_ids=list(o.token_ids)) for o in request.outputs]
            for request in outputs
        ]

    def load_weights(self, model_or_state_dict: Any) -> None:
        """Push new student weights into the engine's model, then reset the prefix cache.

        The cache reset is unconditional: cached KV blocks were computed by the old weights,
        and reusing them would silently mix policies.
        """
        weights = _named_tensors(model_or_state_dict)
        try:
            self._push_weights(weights)
        finally:
            self.llm.reset_prefix_cache()

    def _push_weights(self, weights: list[tuple[str, Any]]) -> None:
        model = _driver_model(self.llm)
        if model is not None:
            model.load_weights(weights)
            return
        # Out-of-process workers: ship a function (needs cloudpickle-able arguments; newer
        # vLLM may require VLLM_ALLOW_INSECURE_SERIALIZATION=1 for this).
        apply_model = getattr(self.llm, "apply_model", None)
        if apply_model is not None:
            apply_model(lambda m: m.load_weights(weights))
            return
        collective_rpc = getattr(self.llm, "collective_rpc", None)
        if collective_rpc is not None:
            collective_rpc(
                lambda worker: worker.model_runner.model.load_weights(weights)  # runs remotely
            )
            return
        raise RuntimeError(
            "cannot reach the vLLM model to load weights: no driver worker, apply_model or "
            "collective_rpc on this vLLM version (consider its WeightTransferConfig API)"
        )

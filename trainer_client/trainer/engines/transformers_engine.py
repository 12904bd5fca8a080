"""Rollouts with Hugging Face ``generate``: the reference engine (CPU or one CUDA device).

Sampling is from the plain (temperature, top_p) distribution: the model's own
``generation_config`` sampling defaults (top_k=50, repetition penalties, min_p, ...) are
overridden, because pass rates must describe the policy we actually train, not a
checkpoint's chat defaults. Reproducibility: the same prompts, k, seed, batch_size, weights
and device give the same completions (results depend on how prompts are batched, since
padding changes the numerics slightly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import GenerationConfig

from trainer_client.trainer.engines.base import Completion, Engine, Sampling

# Prefixes added by DDP / torch.compile wrappers around the training model.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _strip_wrapper_prefixes(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


class TransformersEngine(Engine):
    """``RolloutEngine`` over a causal LM and its tokenizer.

    ``batch_size`` counts generated sequences (prompts x k) per ``generate`` call.
    ``add_special_tokens`` is False by default because prompts normally arrive already
    rendered by a chat template (which adds BOS itself where a model needs one).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        add_special_tokens: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.device = torch.device(device) if device is not None else _model_device(model)
        # A transformers causal LM (anything with .generate), which nn.Module's types cannot say.
        self.model: Any = model.to(self.device)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self.eos_token_ids = sorted(
            set(_as_list(tokenizer.eos_token_id))
            | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
        )
        if not self.eos_token_ids:
            raise ValueError("the tokenizer or model must define an eos token")
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_ids[0]

    # -- generation ------------------------------------------------------------------------

    def _generation_config(
        self, *, k: int, max_new_tokens: int, temperature: float, top_p: float
    ) -> GenerationConfig:
        greedy = temperature == 0
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if greedy
            else {"do_sample": True, "temperature": temperature, "top_p": top_p}
        )
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            num_return_sequences=1 if greedy else k,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            # Neutral values, set explicitly: unset (None) fields are otherwise filled from the
            # checkpoint's generation_config and then from global defaults (top_k=50).
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            epsilon_cutoff=0.0,
            eta_cutoff=0.0,
            min_length=0,
            **sampling,
        )

    def sample(self, prompts: list[str], sampling: Sampling) -> list[list[Completion]]:
        k = sampling.k
        config = self._generation_config(
            k=k,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
        )
        rows_per_prompt = config.num_return_sequences
        prompts_per_batch = max(1, self.batch_size // rows_per_prompt)
        cuda_devices = [self.device] if self.device.type == "cuda" else []
        was_training = self.model.training
        self.model.eval()
        results: list[list[Completion]] = []
        try:
            # fork_rng: seeding must not disturb the caller's (training) RNG streams.
            with torch.random.fork_rng(devices=cuda_devices), torch.no_grad():
                torch.manual_seed(sampling.seed)
                for start in range(0, len(prompts), prompts_per_batch):
                    batch = prompts[start : start + prompts_per_batch]
                    results.extend(self._generate_batch(batch, config, k))
        finally:
            self.model.train(was_training)
        return results

    def _generate_batch(
        self, prompts: list[str], config: GenerationConfig, k: int
    ) -> list[list[Completion]]:
        # Left padding keeps every prompt ending at the same column, so the completion is
        # simply everything after that column.
        encoded = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=self.add_special_tokens,
        ).to(self.device)
        output = self.model.generate(
            input_ids=encoded["input_ids"],
            attention_mask=encoded["attention_mask"],
            generation_config=config,
        )
        generated = output[:, encoded["input_ids"].shape[1] :].tolist()
        rows = config.num_return_sequences
        per_prompt: list[list[Completion]] = []
        for i in range(len(prompts)):
            # generate() returns each prompt's sequences consecutively (prompt-major).
            own = [self._completion(ids) for ids in generated[i * rows : (i + 1) * rows]]
            if rows == 1 and k > 1:  # greedy: every sample is the same sequence
                own = [Completion(own[0].text, list(own[0].token_ids)) for _ in range(k)]
            per_prompt.append(own)
        return per_prompt

    def _completion(self, ids: list[int]) -> Completion:
        # Keep the first eos (the student must learn to stop); drop the padding after it.
        eos = set(self.eos_token_ids)
        for position, token in enumerate(ids):
            if token in eos:
                ids = ids[: position + 1]
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, token_ids=ids)

    # -- weight sync -----------------------------------------------------------------------

    def load_weights(self, model_or_state_dict: torch.nn.Module | Mapping[str, Any]) -> None:
        """Copy a state dict (or another module's weights) into the engine's model in place.

        Keys must match the engine's model (DDP ``module.`` / compile ``_orig_mod.`` prefixes
        are removed). Keys the source omits are allowed only for tied parameters that share
        storage with a loaded one.
        """
        if isinstance(model_or_state_dict, torch.nn.Module):
            source = model_or_state_dict.state_dict()
        else:
            source = dict(model_or_state_dict)
        state = {_strip_wrapper_prefixes(name): tensor for name, tensor in source.items()}
        with torch.no_grad():
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        if unexpected:
            raise KeyError(f"weights not in the engine's model: {sorted(unexpected)[:5]}")
        untied = _untied(self.model, missing, loaded=set(state))
        if untied:
            raise KeyError(f"weights missing from the source: {sorted(untied)[:5]}")


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _untied(model: torch.nn.Module, missing: list[str], loaded: set[str]) -> list[str]:
    tensors = model.state_dict(keep_vars=True)
    loaded_storages = {tensors[name].data_ptr() for name in loaded if name in tensors}
    return [name for name in missing if tensors[name].data_ptr() not in loaded_storages]

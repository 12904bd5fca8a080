"""The student across ranks: as it is (one process), DDP (default) or FSDP2 (`fsdp=True`).

DDP keeps a full replica on every rank and all-reduces the gradients; FSDP2 (`fully_shard`)
shards parameters, gradients and optimiser state over the ranks, for a student too large for
one device. Both average gradients over ranks, so the loop (whose loss is normalised by the
global batch) multiplies its rank's loss by the world size before backward.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

from trainer_client.trainer.ranks import Ranks


class Student:
    """`model` runs forward/backward (the DDP wrapper, or the module itself); `module` is the
    student as the task built it (sharded in place under FSDP)."""

    def __init__(self, module: torch.nn.Module, ranks: Ranks, *, fsdp: bool = False) -> None:
        self.module = module
        self.fsdp = fsdp and ranks.world > 1
        self.model: torch.nn.Module = module
        self._full_copy: torch.nn.Module | None = None
        if self.fsdp:
            self._full_copy = copy.deepcopy(module)  # evaluated with every weight gathered
            for block in _transformer_blocks(module):
                fully_shard(block)
            fully_shard(module)
        elif ranks.world > 1:
            on_gpu = next(module.parameters()).device.type == "cuda"
            self.model = DistributedDataParallel(
                module, device_ids=[ranks.local_rank] if on_gpu else None
            )

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.model.parameters()

    def rollout_weights(self) -> torch.nn.Module | dict[str, Any]:
        """What a rollout engine's load_weights takes. Under FSDP every weight is gathered
        onto every rank: a collective, so every rank must call it."""
        if not self.fsdp:
            return self.module
        return get_model_state_dict(self.module, options=StateDictOptions(full_state_dict=True))

    def full_module(self) -> torch.nn.Module:
        """A module with every weight, to evaluate (a collective under FSDP)."""
        if self._full_copy is None:
            return self.module
        self._full_copy.load_state_dict(self.rollout_weights())  # type: ignore[arg-type]
        return self._full_copy

    def state_dicts(self, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], ...]:
        """(model, optimiser) states to checkpoint, whole (a collective under FSDP, where
        only rank 0 receives them)."""
        if not self.fsdp:
            return self.module.state_dict(), optimizer.state_dict()
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return (
            get_model_state_dict(self.module, options=options),
            get_optimizer_state_dict(self.module, optimizer, options=options),
        )

    def load_state_dicts(
        self,
        optimizer: torch.optim.Optimizer,
        model_state: dict[str, Any],
        optimizer_state: dict[str, Any],
    ) -> None:
        # A whole optimiser state names parameters by index, FSDP's by name: they do not mix.
        by_name = any(
            isinstance(p, str) for g in optimizer_state["param_groups"] for p in g["params"]
        )
        if by_name != self.fsdp:
            written = "with" if by_name else "without"
            raise ValueError(f"the checkpoint was written {written} --fsdp: resume the same way")
        if not self.fsdp:
            self.module.load_state_dict(model_state)
            optimizer.load_state_dict(optimizer_state)
            return
        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(self.module, model_state, options=options)
        set_optimizer_state_dict(self.module, optimizer, optimizer_state, options=options)


def _transformer_blocks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The decoder layers of a transformers causal LM (model.model.layers), each its own
    FSDP unit so only one layer's weights are gathered at a time; none for other models."""
    inner = getattr(module, "model", None)
    layers = getattr(inner, "layers", None)
    return list(layers) if isinstance(layers, torch.nn.ModuleList) else []

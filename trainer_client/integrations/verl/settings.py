"""The `paced` settings of the verl integration, read from verl's Hydra config.

The replay buffer reads `trainer.v1.sampler.sampler_kwargs` (verl passes it as is to a custom
sampler), the dataset reads `data.paced`. Unknown keys are refused by name: a misspelt
`sucess_threshold` silently ignored would grade every group with the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


def plain(config: Any) -> dict[str, Any]:
    """A DictConfig (resolved) or a mapping as a plain dict; None as {}."""
    if config is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return dict(OmegaConf.to_container(config, resolve=True))  # type: ignore[arg-type]
    except ImportError:
        pass
    return dict(config)


def _build(cls: type, where: str, values: Mapping[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    for required in ("url", "run"):
        if not values.get(required):
            raise ValueError(f"{where}.{required} is required")
    return cls(**values)


@dataclass(frozen=True)
class BufferSettings:
    """trainer.v1.sampler.sampler_kwargs for PacedReplayBuffer."""

    url: str = ""
    run: str = ""
    token: str | None = None
    key_prefix: str | None = None  # default "{run}/verl"
    # "reward": the summed rm_scores (verl's canonical reward); any other name: that key of
    # each trajectory's reward_extra_info (DAPO recipes use "acc").
    metric: str = "reward"
    success_threshold: float = 1.0
    state_path: str | None = None  # the ledger on disk: survives a restart
    poll_interval: float = 2.0
    # verl's built-in sync DAPO filter, which verl does not configure for a custom sampler:
    # set these to keep it (paced posts every group before the filter sees it).
    filter_groups_metric: str | None = None
    train_batch_size: int | None = None
    gen_batch_size: int | None = None
    max_inflight_gen_batches: int = 1
    sync_refill_failed_groups: bool = False

    @classmethod
    def from_config(cls, sampler_kwargs: Any) -> BufferSettings:
        return _build(cls, "trainer.v1.sampler.sampler_kwargs", plain(sampler_kwargs))

    def base_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of verl's ReplayBuffer that these settings carry."""
        refills_one_by_one = self.filter_groups_metric is not None or self.sync_refill_failed_groups
        return {
            "poll_interval": self.poll_interval,
            "filter_groups_metric": self.filter_groups_metric,
            "train_batch_size": self.train_batch_size,
            # verl's own rule (trainer_base._build_replay_buffer): exact refills need
            # single-prompt dataloader fetches.
            "gen_batch_size": 1 if refills_one_by_one else self.gen_batch_size,
            "max_inflight_gen_batches": self.max_inflight_gen_batches,
            "sync_refill_failed_groups": self.sync_refill_failed_groups,
        }


@dataclass(frozen=True)
class DatasetSettings:
    """data.paced for PacedDataset."""

    url: str = ""
    run: str = ""
    token: str | None = None
    seed: int = 0
    size: int | None = None  # problems per draw; default data.train_batch_size
    mode: str = "proportional"
    fill: str | None = "unseen_then_uniform"
    lease_ttl_s: float | None = 600.0
    key_prefix: str | None = None  # default "{run}/seed{seed}" (PacedDraws)
    length: int | None = None  # items per epoch; default the rows, whole draws

    @classmethod
    def from_config(cls, paced: Any) -> DatasetSettings:
        return _build(cls, "data.paced", plain(paced))

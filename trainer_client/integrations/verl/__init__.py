"""paced inside verl's v1 trainer (verl 0.9.1), by configuration only:

- `PacedReplayBuffer` / `PacedReplayBufferAsync` (trainer.v1.sampler.custom_sampler): verl's
  ReplayBuffer that posts every terminal group's k of n to paced before any filter evicts it;
- `PacedDataset` (data.custom_cls): verl's RLHFDataset whose training items are paced's draws;
- `convert`: verl parquet rows -> a paced dataset (`upload_verl_parquet`, or
  `python -m trainer_client.integrations.verl.convert`).

Importing this package imports neither verl nor Ray nor torch: the classes load on first
use (verl's `load_extern_object("pkg://trainer_client.integrations.verl", name)` is such a use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "PacedReplayBuffer": "replay_buffer",
    "PacedReplayBufferAsync": "replay_buffer",
    "PacedDataset": "dataset",
    "upload_verl_parquet": "convert",
    "verl_rows_to_problems": "convert",
    "problem_id_of": "convert",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)

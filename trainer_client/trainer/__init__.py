"""The PACED trainer (torch needed): recipes (recipes/) on one shared loop and its parts.

Importing this package is cheap; `train` loads torch on first use.
"""

from __future__ import annotations

from typing import Any

from trainer_client.trainer.bundle import TaskBundle
from trainer_client.trainer.config import TrainConfig

__all__ = ["TaskBundle", "TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    # PEP 562: the loop imports torch, so only load it when asked for.
    if name == "train":
        from trainer_client.trainer.recipes.distill import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""TrainConfig: every knob of a PACED training run, loadable from JSON/TOML and CLI flags.

Precedence is defaults < config file < explicit flags, so a shared config file can be reused
with a one-off `--steps 5`.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

Scheme = Literal["paced", "paced-loss", "hard-filter", "uniform"]
LossName = Literal["fkl", "rkl", "two-stage", "akl"]
Window = Literal["all", "latest"]
Reduction = Literal["token", "sequence"]
Schedule = Literal["constant", "cosine"]

SCHEMES: tuple[str, ...] = ("paced", "paced-loss", "hard-filter", "uniform")
LOSSES: tuple[str, ...] = ("fkl", "rkl", "two-stage", "akl")


@dataclass(frozen=True)
class TrainConfig:
    run: str = "paced-run"
    dataset: str | None = None  # default: the run name
    scheme: Scheme = "paced"
    loss: LossName = "fkl"
    steps: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    # Linear warm-up from 0: a fresh AdamW's first steps are ~lr per weight whatever the
    # gradient, which knocks a small converged student off what it already knows.
    warmup_steps: int = 10
    # After warm-up: "constant", or "cosine" decay to min_lr_ratio * lr at the last step.
    lr_schedule: Schedule = "constant"
    min_lr_ratio: float = 0.1
    # How a batch's loss is reduced: mean over response tokens, or over problems (each
    # problem's own token mean), so long responses do not dominate. Loss weights multiply
    # each problem's loss; the normaliser never depends on them (trainer_client.trainer.losses).
    loss_reduction: Reduction = "token"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Estimation: K rollouts per problem at this temperature, graded by the verifier.
    k: int = 8
    rollout_temperature: float = 1.0
    rollout_batch_size: int = 512  # sequences per generate() call
    max_new_tokens: int = 64  # used when no teacher reference gives a tighter bound
    verifier: Literal["exact", "math"] = "exact"
    # Refresh: every `refresh_every` steps re-roll `refresh_size` problems from the queue.
    refresh_every: int = 10
    refresh_size: int = 128
    # Kernel and estimator of the run (only used when the run is created).
    alpha: float = 1.0
    beta: float = 1.0
    estimator: Literal["empirical", "posterior"] = "empirical"
    half_life_steps: float | None = None
    # "latest": a problem's pass rate is its newest estimation round only, so the service
    # tracks the current student (see docs/architecture.md); "all" sums every round.
    estimator_window: Window = "latest"
    # Two-stage: forward KL before this step, reverse KL after (default: half of `steps`).
    switch_step: int | None = None
    akl_mu: float = 0.5
    temperature: float = 1.0  # distillation softmax temperature
    checkpoint_every: int = 50
    seed: int = 0
    # Step 0: post the task's own initial estimate (TaskBundle.initial_pass_rates, K
    # rollouts per problem with the same initial student) instead of rolling out again.
    reuse_task_estimate: bool = False
    # Full-pool estimate at the end (zones after training, on the same K as before).
    final_estimate: bool = True
    evaluate: bool = True
    # Evaluate every N steps into WORKDIR/evals.jsonl (accuracy-vs-step curves); 0: only
    # before and after training.
    eval_every: int = 0
    # Draw step t+1's batch (and read step t's difficulty) while step t trains; the batches
    # are the same either way (trainer_client.trainer.prefetch, loop.Trainer.next_batch).
    prefetch: bool = True

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("steps", "refresh_size", "warmup_steps", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("batch_size", "k", "refresh_every", "checkpoint_every", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("min_lr_ratio must be in [0, 1]")
        choices = {
            "lr_schedule": ("constant", "cosine"),
            "loss_reduction": ("token", "sequence"),
            "estimator_window": ("all", "latest"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.estimator_window == "latest" and self.half_life_steps is not None:
            raise ValueError(
                "half_life_steps decays the counts of every round; with estimator_window "
                "'latest' only the newest round counts. Set estimator_window='all' to use it."
            )

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields changed; None values mean "not given" and are skipped."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Load a .json or .toml file (flat keys, or a [train] table in TOML)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data = tomllib.loads(text)
            data = data.get("train", data)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"config file must be .json or .toml, got {path.name}")
        return cls().with_overrides(**data).with_overrides(**overrides)


def lr_scale(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to min_lr_ratio at the last step: a
    function of the step alone, so a resumed run continues the same schedule."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    span = max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

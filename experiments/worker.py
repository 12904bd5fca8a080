"""One arm x seed: train against the shared service, then reduce its logs to a JSON record.

Runs in a worker process (torch threads set per process), so two arms can train at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer_client.trainer.config import TrainConfig


@dataclass(frozen=True)
class RunSpec:
    arm: str
    seed: int
    config: TrainConfig
    task_dir: str
    workdir: str
    url: str
    threads: int


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _eval_point(step: int, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": step,
        "accuracy": report["eval"]["accuracy"],
        # String keys, as they read back from JSON, so in-memory and reloaded records agree.
        "per_level": {str(level): acc for level, acc in report["eval"]["per_level"].items()},
        "heldout": report["heldout"]["accuracy"],
    }


def reduce_run(spec: RunSpec, summary: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """The per-seed record: final accuracies, the curves, and what the run spent."""
    workdir = Path(spec.workdir)
    steps = _read_jsonl(workdir / "metrics.jsonl")
    evals = _read_jsonl(workdir / "evals.jsonl")
    curve = [_eval_point(0, summary["eval_before"])]
    curve += [_eval_point(e["step"], e) for e in evals]
    curve.append(_eval_point(spec.config.steps, summary["eval_after"]))
    # On-policy (reverse KL) samples are training data, not estimation; the final full-pool
    # estimate only measures zones after training, so neither counts as estimation spend.
    on_policy = sum(s["trained_items"] for s in steps if s["loss_kind"] == "rkl")
    rollouts_before_final = steps[-1]["rollouts_spent"] if steps else 0
    return {
        "arm": spec.arm,
        "seed": spec.seed,
        "config": asdict(spec.config),
        "before": _eval_point(0, summary["eval_before"]),
        "after": _eval_point(spec.config.steps, summary["eval_after"]),
        "curve": curve,
        "eval_sizes": {
            "eval": summary["eval_before"]["eval"]["n"],
            "heldout": summary["eval_before"]["heldout"]["n"],
        },
        "zones": [{"step": s["step"], **s["zones"]} for s in steps],
        "zones_before": summary["zones_before"],
        "zones_after": summary["zones_after"],
        "compute": {
            "optimizer_steps": len(steps),
            "teacher_forwards": summary["teacher_forwards"],
            "student_backward_tokens": sum(s["student_backward_tokens"] for s in steps),
            "estimation_rollouts": rollouts_before_final - on_policy,
            "on_policy_samples": on_policy,
            "fallback_batches": summary["fallbacks"],
            "conflicts": summary["conflicts"],
        },
        "timings": {**summary["timings"], "run_wall_s": wall_s},
    }


def run_one(spec: RunSpec) -> dict[str, Any]:
    import torch

    from trainer_client.client import PacedClient
    from trainer_client.tasks.arithmetic.bundle import load_task_bundle
    from trainer_client.trainer.recipes.distill import train

    torch.set_num_threads(spec.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model per run is noise
    started = time.perf_counter()
    bundle = load_task_bundle(spec.task_dir)  # evaluates on the task's eval and held-out splits
    with PacedClient(spec.url) as client:
        # device="cpu" explicitly: the loop's default would raise the thread count to all cores.
        summary = train(spec.config, client, bundle, spec.workdir, device="cpu", progress=False)
    return reduce_run(spec, summary, time.perf_counter() - started)

"""Train arm x seed runs on one task directory against a fresh local service, one at a time.

The sub-pool and one-format experiments share this: experiments/compare.py's upload and
worker pool, but any task directory (experiments/derived_task.py) and 1 torch thread per
run by default (the machine's cores are shared).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.compare import _run_all
from experiments.worker import RunSpec
from trainer_client.trainer.config import TrainConfig


@dataclass(frozen=True)
class Planned:
    name: str  # record file name: raw/<name>.json
    arm: str
    seed: int
    config: TrainConfig


def run_planned(
    planned: list[Planned],
    task_dir: Path,
    work: Path,
    raw_dir: Path,
    parallel: int = 1,
    inspect: Callable[[str, list[dict]], Any] | None = None,
) -> list[dict]:
    """Every planned run on `task_dir` (fresh service and run dirs under `work`); each
    record is written to raw_dir/<name>.json with "name" and "task_dir" added.
    `inspect(url, records)` runs while the service still holds the runs."""
    from trainer_client.local.service import local_service

    shutil.rmtree(work, ignore_errors=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    names = {p.config.run: p.name for p in planned}
    # No upload here: each run's ensure_run creates the dataset and upserts the pool's
    # problems that have a verified reference (the same set: the task's references are).
    with local_service(work / "service") as url:
        specs = [
            RunSpec(
                arm=p.arm,
                seed=p.seed,
                config=p.config,
                task_dir=str(task_dir),
                workdir=str(work / "runs" / p.config.run),
                url=url,
                threads=1,
            )
            for p in planned
        ]
        scratch = work / "compare-raw"  # _run_all writes <arm>-s<seed>.json here
        scratch.mkdir(parents=True, exist_ok=True)
        records = _run_all(specs, parallel, scratch)
        if inspect is not None:
            inspect(url, records)
    for record in records:
        record["name"] = names[record["config"]["run"]]
        record["task_dir"] = str(task_dir)
        (raw_dir / f"{record['name']}.json").write_text(json.dumps(record, indent=1))
    return records


def level_curve(record: dict, level: int) -> dict[int, float]:
    """Step -> accuracy on one level (eval split) from a record's curve."""
    return {point["step"]: point["per_level"][str(level)] for point in record["curve"]}

"""Which problems did `paced-reestimate` re-estimate? One run of the arm, then the service's
per-problem `last_step` for every pool problem.

    python experiments/reestimate_check.py [--seed 0] [--steps 250]

The arm exactly as `make experiment` runs it (experiments/arms.py: 256 rollout-queue-head
problems re-rolled every 25 steps, window "latest"). A problem estimated only at step 0 has
last_step 0; one re-rolled during training has its refresh step. Prints the counts per level
and initial zone; writes docs/results/raw/reestimate_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiments.arms import FULL, arm_config  # noqa: E402
from experiments.derived_task import base_pool, ensure_task  # noqa: E402
from experiments.runs import Planned, run_planned  # noqa: E402


def _zone(rate: float) -> str:
    return "p=0" if rate == 0 else "p=1" if rate == 1 else "0<p<1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-dir", default=str(REPO_ROOT / "work/task"))
    parser.add_argument("--work", default=str(REPO_ROOT / "work/reestimate-check"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=FULL.base.steps)
    parser.add_argument("--out", default=str(REPO_ROOT / "docs/results/raw/reestimate_check.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    task_dir, work = ensure_task(Path(args.task_dir)), Path(args.work)
    pool, _, rates = base_pool(task_dir)
    config = replace(
        arm_config(FULL, "paced-reestimate", args.seed),
        steps=args.steps,
        checkpoint_every=args.steps,
        eval_every=0,  # evaluated before and after only: this run is about the queue
    )
    found: dict = {}

    def inspect(url: str, records: list[dict]) -> None:
        from trainer_client.client import PacedClient

        with PacedClient(url) as client:
            for problem in pool:
                stats = client.get_problem_stats(config.run, problem.id)
                found[problem.id] = stats.last_step

    run_planned(
        [Planned(config.run, "paced-reestimate", args.seed, config)],
        task_dir,
        work,
        work / "raw",
        inspect=inspect,
    )
    counts: Counter = Counter()
    steps: Counter = Counter()
    for problem in pool:
        last = found[problem.id] or 0
        key = f"L{problem.level} {_zone(rates[problem.id])}"
        counts[(key, "re-estimated" if last > 0 else "step 0 only")] += 1
        if last > 0:
            steps[last] += 1
    per_group = {
        key: {
            "re_estimated": counts[(key, "re-estimated")],
            "step_0_only": counts[(key, "step 0 only")],
        }
        for key in sorted({k for k, _ in counts})
    }
    result = {
        "command": " ".join(["python", *sys.argv]),
        "config": {
            "steps": args.steps,
            "seed": args.seed,
            "refresh_every": config.refresh_every,
            "refresh_size": config.refresh_size,
        },
        "per_group": per_group,
        "re_estimated_by_last_step": dict(sorted(steps.items())),
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("| problems (initial zone) | re-estimated during training | estimated at step 0 only |")
    print("|---|---|---|")
    for key, entry in per_group.items():
        print(f"| {key} | {entry['re_estimated']} | {entry['step_0_only']} |")
    print(f"re-estimated problems by last refresh step: {result['re_estimated_by_last_step']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

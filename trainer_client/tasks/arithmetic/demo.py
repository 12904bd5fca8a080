"""`make demo`: a short PACED distillation on the built-in CPU task, end to end.

1. start `paced serve` on SQLite in a temporary directory, on a free port;
2. prepare the task under ./work/task (teacher trained and student warmed up; cached);
3. distil teacher -> student with scheme paced and forward KL, batches from the service;
4. print zones and held-out accuracy before -> after, stop the service.

Every number printed is measured in this run; nothing is canned.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from trainer_client.trainer.config import TrainConfig

# Sized for a 2-core CPU: long enough for frontier problems to become mastered, short
# enough for the demo to stay near a few minutes once the task is built. Window "latest":
# a re-estimated problem's pass rate is its newest K-rollout round, so the service's view
# follows the student (at the end it equals the fresh full estimate, printed side by side).
DEMO_CONFIG = TrainConfig(
    run="demo",
    scheme="paced",
    loss="fkl",
    steps=100,
    batch_size=32,
    lr=3e-4,
    warmup_steps=10,
    lr_schedule="cosine",
    loss_reduction="sequence",
    k=8,
    estimator_window="latest",
    reuse_task_estimate=True,
    refresh_every=20,
    refresh_size=100,
    checkpoint_every=60,
    seed=0,
)

# Problems of the task's pool used by the demo (levels 3 and 4, interleaved): each is seen
# about once in 100 steps of 32, and the initial and final full estimates stay short.
DEMO_POOL = 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer_client.tasks.arithmetic.demo", description=__doc__
    )
    parser.add_argument("--task-dir", default="work/task", help="task artefacts (cached)")
    parser.add_argument("--workdir", default="work/demo", help="checkpoints and metrics")
    parser.add_argument("--quick", action="store_true", help="the quick task (smoke test)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--no-prefetch",
        dest="prefetch",
        action="store_false",
        default=None,
        help="draw each batch in line (compare the client share of step time)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="a running `paced serve` with no run named demo (default: start one on SQLite); "
        "needed under torchrun, whose ranks must share one service",
    )
    args = parser.parse_args(argv)

    from trainer_client.client import PacedClient
    from trainer_client.local.service import local_service
    from trainer_client.tasks.arithmetic.bundle import load_task_bundle, prepare_task
    from trainer_client.trainer.ranks import process_group
    from trainer_client.trainer.recipes.distill import train
    from trainer_client.trainer.report import format_summary

    started = time.perf_counter()
    config = DEMO_CONFIG.with_overrides(steps=args.steps, prefetch=args.prefetch)
    workdir = Path(args.workdir)
    with ExitStack() as stack:
        ranks = stack.enter_context(process_group())
        say = print if ranks.is_main else _silent
        url = args.url
        if url is None:
            if ranks.world > 1:
                raise SystemExit("under torchrun, start `paced serve` and pass its --url")
            service_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="paced-demo-"))
            url = stack.enter_context(local_service(service_dir))
            say(f"PACED service on {url} (SQLite in {service_dir})", flush=True)
        if ranks.is_main:
            # A fresh run each time: the service database is temporary, so old checkpoints
            # and metrics would describe a run that no longer exists.
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"preparing the task in {args.task_dir} (cached after the first run)...")
            prepare_started = time.perf_counter()
            prepare_task(args.task_dir, seed=config.seed, quick=args.quick)
            print(f"task ready in {time.perf_counter() - prepare_started:.1f} s", flush=True)
        ranks.barrier()
        bundle = load_task_bundle(args.task_dir, pool_limit=None if args.quick else DEMO_POOL)
        with PacedClient(url) as client:
            summary = train(config, client, bundle, workdir)
    say()
    say(format_summary(summary))
    say(f"\ndemo wall time {time.perf_counter() - started:.1f} s; metrics in {workdir}")
    return 0


def _silent(*args: object, **kwargs: object) -> None:
    """print's stand-in on ranks other than 0: the demo's report is printed once."""


if __name__ == "__main__":
    sys.exit(main())

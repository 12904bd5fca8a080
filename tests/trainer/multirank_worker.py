"""One rank of tests/trainer/test_multirank.py: `train` on a task directory, config by config.

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        tests/trainer/multirank_worker.py URL TASK_DIR WORKROOT RUN.json [RUN.json:fsdp ...]

Each TrainConfig file trains into WORKROOT/<its run name>; ":fsdp" shards the student with
FSDP2 instead of DDP. Without torchrun it is one process, as `train` is anywhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from trainer_client.client import PacedClient
from trainer_client.tasks.arithmetic.bundle import load_task_bundle
from trainer_client.trainer.config import TrainConfig
from trainer_client.trainer.ranks import process_group
from trainer_client.trainer.recipes.distill import train


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)  # two ranks share the test machine's cores
    url, task_dir, workroot, *runs = argv
    # One process group for every run (train() joins it rather than making its own).
    with process_group(), PacedClient(url) as client:
        for run in runs:
            path, _, mode = run.partition(":")
            config = TrainConfig.from_file(path)
            train(
                config,
                client,
                load_task_bundle(task_dir),  # fresh models for every run
                Path(workroot) / config.run,
                device="cpu",
                progress=False,
                fsdp=mode == "fsdp",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

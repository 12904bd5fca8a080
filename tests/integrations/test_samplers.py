"""The torchdata StatefulDataLoader sampler (resume = the uninterrupted run), against a real
service (prime-rl's task sampler: test_prime_rl.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from torchdata.stateful_dataloader import StatefulDataLoader

from tests.integrations import grpo_job
from trainer_client.client import PacedClient
from trainer_client.integrations.stateful import PacedStatefulSampler
from trainer_client.tasks import toy

DRAW = 4  # problems per PACED draw
LOADER_BATCH = 2  # so a checkpoint can fall in the middle of a draw
EPOCHS = 2


def graded(problem_id: str, step: int, attempts: int = 4) -> dict:
    """Deterministic fake grading: the same outcomes for both runs of a comparison."""
    digest = int(hashlib.sha256(f"{problem_id}:{step}".encode()).hexdigest(), 16)
    return {"problem_id": problem_id, "attempts": attempts, "successes": digest % (attempts + 1)}


def loader_for(url: str, run: str, rows: list[dict]) -> StatefulDataLoader:
    sampler = PacedStatefulSampler.for_dataset(url, run, rows, size=DRAW, seed=3)
    return StatefulDataLoader(rows, batch_size=LOADER_BATCH, sampler=sampler, collate_fn=list)


def consume(paced: PacedClient, run: str, loader, batches, seen: list, stop_after=None):
    """Iterate `batches` loader batches (across epochs), grading each completed draw."""
    while len(seen) < batches:
        for batch in loader:
            seen.append([row["problem_id"] for row in batch])
            if len(seen) % (DRAW // LOADER_BATCH) == 0:
                draw = [pid for part in seen[-(DRAW // LOADER_BATCH) :] for pid in part]
                step = len(seen) // (DRAW // LOADER_BATCH) - 1
                paced.post_outcomes(run, [graded(pid, step) for pid in draw])
            if len(seen) == batches or len(seen) == stop_after:
                return seen
    return seen


def test_resuming_from_a_state_dict_reproduces_the_uninterrupted_run(service_url):
    rows = toy.problems(12)  # 3 draws an epoch
    total = EPOCHS * len(rows) // LOADER_BATCH
    with PacedClient(service_url) as paced:
        grpo_job.setup(service_url, "stateful-a", rows)
        uninterrupted = consume(
            paced, "stateful-a", loader_for(service_url, "stateful-a", rows), total, []
        )

        grpo_job.setup(service_url, "stateful-b", rows)
        loader = loader_for(service_url, "stateful-b", rows)
        # Stop in the middle of draw 3 of epoch 1 (batch 7 of 12), as a crash would.
        seen = consume(paced, "stateful-b", loader, total, [], stop_after=7)
        state = loader.state_dict()
        assert state  # the sampler's position travels inside the dataloader's state
        resumed = loader_for(service_url, "stateful-b", rows)  # a new process, say
        resumed.load_state_dict(state)
        consume(paced, "stateful-b", resumed, total, seen)
    assert seen == uninterrupted and len(seen) == total


def test_the_framework_free_glue_imports_no_framework():
    code = (
        "import sys\n"
        "import trainer_client.integrations.draws, trainer_client.integrations.stateful\n"
        "import trainer_client.integrations.prime_rl, trainer_client.integrations.slime\n"
        "import trainer_client.integrations.nemo_rl\n"
        "frameworks = {'verl', 'ray', 'trl', 'verifiers', 'slime', 'nemo_rl'}\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & frameworks\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

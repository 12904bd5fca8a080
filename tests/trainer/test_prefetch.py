"""BatchPrefetcher and the trainer half's outcome posts against a real service (SQLite and
PostgreSQL).

- Determinism: the same seeds give the same batches with and without prefetching, and a
  batch pinned by a step's draw key is what a restarted trainer gets for that step.
- Exactly-once: a trainer process killed (SIGKILL) after some posts were acknowledged loses
  none of them, and re-posting every step after a restart (trainer.outcomes.post_outcomes:
  the key is the body's) counts each outcome once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from trainer_client.client import PacedClient
from trainer_client.local.service import local_service
from trainer_client.trainer.outcomes import post_outcomes
from trainer_client.trainer.prefetch import BatchPrefetcher
from trainer_client.trainer.seeds import derive_seed

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET = "prefetch"
PROBLEMS = 120
STEPS = 8


@pytest.fixture(params=BACKENDS)
def service_url(request, tmp_path):
    database_url = server_url = None
    if request.param == "postgres":
        server_url = request.getfixturevalue("postgres_server_url")
        database_url = create_pg_database(server_url)
    try:
        with local_service(tmp_path, timeout_s=60, database_url=database_url) as url:
            with PacedClient(url) as paced:
                paced.create_dataset(DATASET)
                problems = [{"id": f"p{i}", "prompt": f"{i} + 1 = ?"} for i in range(PROBLEMS)]
                paced.upsert_problems(DATASET, problems)
            yield url
    finally:
        if database_url is not None:
            drop_pg_database(server_url, database_url)


def _new_graded_run(paced: PacedClient, name: str) -> None:
    paced.create_run(name, DATASET)
    outcomes = [{"problem_id": f"p{i}", "attempts": 8, "successes": i % 9} for i in range(PROBLEMS)]
    paced.post_outcomes(name, outcomes)


def _ids(batch) -> list[str]:
    return [item.problem_id for item in batch.items]


def test_same_seeds_same_batches_with_and_without_prefetch(service_url):
    with PacedClient(service_url) as paced:
        _new_graded_run(paced, "static")

        def fetch(step: int):
            return paced.batch("static", 16, seed=derive_seed(7, step, "batch"))

        direct = [_ids(fetch(step)) for step in range(STEPS)]
        asked_at: dict[int, float] = {}
        wanted_at: dict[int, float] = {}

        def timed_fetch(step: int):
            asked_at[step] = time.monotonic()
            return fetch(step)

        prefetched = []
        with BatchPrefetcher(timed_fetch) as prefetcher:
            for step in range(STEPS):
                wanted_at[step] = time.monotonic()
                prefetched.append(_ids(prefetcher.get(step)))
                time.sleep(0.05)  # the training step
    assert prefetched == direct
    assert len({tuple(ids) for ids in direct}) == STEPS  # fresh seeds: different draws
    # Every batch after the first was requested while the previous step trained.
    assert all(asked_at[step] < wanted_at[step] for step in range(1, STEPS))


def test_pinned_steps_survive_a_restart_with_outcomes_posted_in_between(service_url):
    with PacedClient(service_url) as paced:
        _new_graded_run(paced, "pinned")

        def fetch(step: int):
            seed = derive_seed(3, step, "batch")
            return paced.batch("pinned", 16, seed=seed, draw_key=f"pinned-step-{step}")

        served = []
        with BatchPrefetcher(fetch) as prefetcher:
            for step in range(STEPS):
                batch = prefetcher.get(step)
                served.append(_ids(batch))
                outcomes = [
                    {"problem_id": pid, "attempts": 4, "successes": 1, "step": step}
                    for pid in _ids(batch)
                ]
                post_outcomes(paced, "pinned", outcomes, step=step)
        # A restarted trainer asks for the same steps with the same keys: the same batches,
        # although the run's weights moved since.
        again = [_ids(fetch(step)) for step in range(STEPS)]
        assert again == served
        unpinned = paced.batch("pinned", 16, seed=derive_seed(3, 0, "batch"))
        assert _ids(unpinned) != served[0]  # the outcomes did change what a fresh draw gets


TRAINER = textwrap.dedent(
    """
    import sys, time
    from trainer_client.client import PacedClient
    from trainer_client.trainer.outcomes import post_outcomes

    url, run, acks = sys.argv[1:4]
    steps, pause = int(sys.argv[4]), float(sys.argv[5])

    with PacedClient(url) as paced:
        for step in range(steps):
            outcomes = [
                {"problem_id": f"p{(step * 7 + j) % 120}", "attempts": 3, "successes": j % 4}
                for j in range(4)
            ]
            post_outcomes(paced, run, outcomes, step=step)  # returns once acknowledged
            with open(acks, "a") as f:
                f.write(f"{run}-step-{step}\\n")
            time.sleep(pause)
    """
)


def _expected_attempts(steps: list[int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for step in steps:
        for j in range(4):
            pid = f"p{(step * 7 + j) % 120}"
            totals[pid] = totals.get(pid, 0) + 3
    return totals


def _attempts(paced: PacedClient, run: str) -> dict[str, int]:
    return {w.problem_id: int(w.attempts) for w in paced.iter_weights(run) if int(w.attempts) > 0}


def _trainer(url: str, run: str, acks, steps: int, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", TRAINER, url, run, str(acks), str(steps), str(pause)]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env)


def test_killed_trainer_loses_no_acknowledged_outcome_and_restart_counts_once(
    service_url, tmp_path
):
    steps = 40
    acks = tmp_path / "acks.txt"
    with PacedClient(service_url) as paced:
        paced.create_run("killed", DATASET)
        trainer = _trainer(service_url, "killed", acks, steps, pause=0.05)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and trainer.poll() is None:
            if acks.exists() and len(acks.read_text().splitlines()) >= 5:
                break
            time.sleep(0.01)
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()
        acked = [int(k.rsplit("-", 1)[1]) for k in acks.read_text().splitlines()]
        assert 5 <= len(acked) < steps  # killed mid-run, after acknowledged posts
        have = _attempts(paced, "killed")
        # Every acknowledged step is in; anything beyond is a step sent but not yet acked.
        for pid, attempts in _expected_attempts(acked).items():
            assert have.get(pid, 0) >= attempts
        landed = sum(have.values()) // 12
        assert len(acked) <= landed <= len(acked) + 2

        # The restarted trainer does not know what landed: it posts every step again.
        acks.unlink()
        restarted = _trainer(service_url, "killed", acks, steps, pause=0.0)
        assert restarted.wait(timeout=120) == 0
        assert _attempts(paced, "killed") == _expected_attempts(list(range(steps)))

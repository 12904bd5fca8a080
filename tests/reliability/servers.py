"""Real `paced serve` processes for the reliability tests, plus the traffic helpers they share.

Every test here talks HTTP to a separate server process on 127.0.0.1, because what is under
test (kill -9, SIGTERM, database outages, lock contention) only happens across processes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.spawn import ServiceProcess

# Quiet servers: the tests read their logs for tracebacks, not for access lines.
QUIET = {"PACED_LOG_LEVEL": "warning"}


def reliability_server(database_url: str, workdir: Path, env: dict | None = None) -> ServiceProcess:
    """A `paced serve` process on `database_url` (not started), logging to workdir."""
    return ServiceProcess(
        workdir=workdir, database_url=database_url, settings={**QUIET, **(env or {})}
    )


@dataclass(frozen=True)
class Submission:
    """One outcomes post: its Idempotency-Key and body. Replays reuse both."""

    key: str
    outcomes: tuple[tuple[str, int, int], ...]

    def body(self) -> dict:
        return {
            "outcomes": [
                {"problem_id": p, "attempts": n, "successes": k} for p, n, k in self.outcomes
            ]
        }


def random_submission(rng: random.Random, key: str, problem_ids: list[str], items: int = 5):
    outcomes = []
    for pid in rng.sample(problem_ids, rng.randint(1, items)):
        attempts = rng.randint(1, 8)
        outcomes.append((pid, attempts, rng.randint(0, attempts)))
    return Submission(key, tuple(outcomes))


def expected_counts(submissions) -> dict[str, tuple[int, int]]:
    """Per-problem (attempts, successes) summed over the given (unique) submissions."""
    attempts: Counter[str] = Counter()
    successes: Counter[str] = Counter()
    for sub in submissions:
        for pid, n, k in sub.outcomes:
            attempts[pid] += n
            successes[pid] += k
    return {pid: (attempts[pid], successes[pid]) for pid in attempts}


def setup_run(url: str, run: str = "r", problems: int = 40) -> list[str]:
    """Create a dataset and an open run over it; returns the problem ids."""
    ids = [f"q{i}" for i in range(problems)]
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/v1/datasets", json={"name": "d"}).status_code in (201, 409)
        rows = [{"id": pid, "prompt": f"{pid}?", "answer": "1"} for pid in ids]
        response = http.post("/v1/datasets/d/problems", json={"problems": rows})
        assert response.status_code == 200, response.text
        response = http.post("/v1/runs", json={"name": run, "dataset": "d"})
        assert response.status_code == 201, response.text
    return ids


def read_counts(url: str, run: str = "r") -> dict[str, tuple[int, int]]:
    """Per-problem (attempts, successes) as the weights endpoint reports them (seen only)."""
    counts: dict[str, tuple[int, int]] = {}
    cursor = None
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            body = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            response = http.post(f"/v1/runs/{run}/weights", json=body)
            assert response.status_code == 200, response.text
            page = response.json()
            for item in page["items"]:
                if item["attempts"]:
                    counts[item["problem_id"]] = (item["attempts"], item["successes"])
            cursor = page["next_cursor"]
            if not cursor:
                return counts

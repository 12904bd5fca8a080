"""The production shape on one machine: two `paced serve` replicas on one PostgreSQL database
behind a real HAProxy, running deploy/haproxy.cfg (the file docker-compose.yml's `scale`
profile runs), with a trainer-like client posting and drawing through it.

It asserts what docs/scaling.md promises: no outcome lost or counted twice (retries with the
same Idempotency-Key may land on the other replica), both replicas serve requests, and a
seeded draw gives the same batch whichever replica serves it. HAProxy is a Debian package
(`apt-get install haproxy`, done by .ci/run): without it the test is skipped, unless
PACED_LB_REQUIRED=1, where it fails.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import migrate
from service.spawn import ServiceProcess, free_port, wait_healthy
from tests.conftest import create_pg_database, drop_pg_database
from trainer_client import PacedClient

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
TOKEN = "lb-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
REPLICAS = ("replica1", "replica2")  # the server names in deploy/haproxy.cfg
PROBLEMS = 300
STEPS = 8
BATCH = 40
CHUNK = 12  # outcomes per request: every step's post is several keyed chunks
ATTEMPTS = 8  # rollouts per problem and step


@pytest.fixture(scope="module")
def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = "haproxy is not installed (apt-get install haproxy)"
    if os.environ.get("PACED_LB_REQUIRED") == "1":
        pytest.fail(f"PACED_LB_REQUIRED=1 but {message}")
    pytest.skip(message)


@dataclass
class LoadBalancer:
    url: str
    stats_url: str

    def requests_per_replica(self) -> dict[str, int]:
        """HAProxy's own count of the sessions it sent to each replica (`stot`)."""
        text = httpx.get(f"{self.stats_url};csv", timeout=5).text.lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: int(r["stot"]) for r in rows if r["svname"] in REPLICAS}

    def replicas_up(self) -> bool:
        text = httpx.get(f"{self.stats_url};csv", timeout=5).text.lstrip("# ")
        status = {r["svname"]: r["status"] for r in csv.DictReader(io.StringIO(text))}
        return all(status.get(name) == "UP" for name in REPLICAS)


@pytest.fixture
def load_balancer(haproxy_binary: str, postgres_server_url: str, tmp_path: Path):
    """Two replicas on a fresh database, HAProxy in front; yields (LoadBalancer, replicas)."""
    database_url = create_pg_database(postgres_server_url)
    migrate.upgrade(database_url)  # once, before two processes would race to do it
    settings = {"PACED_ADMIN_TOKEN": TOKEN, "PACED_SYNC_INTERVAL_S": "0.25"}
    replicas = [
        ServiceProcess(workdir=tmp_path, database_url=database_url, settings=settings)
        for _ in REPLICAS
    ]
    try:
        for replica in replicas:
            replica.start()
        with haproxy(haproxy_binary, tmp_path, replicas) as balancer:
            yield balancer, replicas
    finally:
        for replica in replicas:
            replica.stop()
        drop_pg_database(postgres_server_url, database_url)


@contextmanager
def haproxy(binary: str, workdir: Path, replicas: list[ServiceProcess]) -> Iterator[LoadBalancer]:
    """HAProxy on deploy/haproxy.cfg, its addresses given by the environment as in compose;
    yields once both replicas pass its health check."""
    port, stats_port = free_port(), free_port()
    env = {
        **os.environ,
        "PACED_LB_BIND": f"127.0.0.1:{port}",
        "PACED_LB_STATS_BIND": f"127.0.0.1:{stats_port}",
        **{f"PACED_REPLICA_{i}": f"127.0.0.1:{r.port}" for i, r in enumerate(replicas, 1)},
    }
    log_path = workdir / "haproxy.log"
    with log_path.open("w") as log:
        # -db: stay in the foreground, so terminate() stops it.
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(HAPROXY_CONFIG)], env=env, stdout=log, stderr=log
        )
    balancer = LoadBalancer(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats")
    try:
        wait_healthy(balancer.url, proc, 30, describe=log_path.read_text)
        deadline = time.monotonic() + 30
        while not balancer.replicas_up():
            assert time.monotonic() < deadline, "haproxy never saw both replicas UP"
            time.sleep(0.1)
        yield balancer
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def replica_counter(replica: ServiceProcess, name: str) -> float:
    """A counter from one replica's own /metrics (every label summed)."""
    text = httpx.get(f"{replica.url}/metrics", headers=ADMIN, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{name}_total"
    )


def draw(http: httpx.Client, seed: int, draw_key: str | None = None) -> tuple[str, dict]:
    """(replica that served it, batch) for one seeded draw through the load balancer."""
    body = {"size": BATCH, "seed": seed, **({"draw_key": draw_key} if draw_key else {})}
    response = http.post("/v1/runs/r/batches", json=body)
    assert response.status_code == 200, response.text
    return response.headers["X-Paced-Replica"], response.json()


@dataclass
class Posted:
    """What the trainer posted, each outcome once, and how its retries were routed."""

    items: int = 0
    attempts: int = 0
    successes: int = 0
    retries: int = 0
    retries_elsewhere: int = 0  # chunk retries answered by the other replica


def graded(problem_ids: list[str], step: int, rng: random.Random) -> list[dict]:
    """Outcomes as a trainer reports them: ATTEMPTS rollouts per problem, k of them passed."""
    return [
        {
            "problem_id": pid,
            "attempts": ATTEMPTS,
            "successes": rng.randint(0, ATTEMPTS),
            "step": step,
        }
        for pid in problem_ids
    ]


def post_with_retries(
    paced: PacedClient, http: httpx.Client, outcomes: list[dict], key: str, posted: Posted
) -> None:
    """Post outcomes in keyed chunks, then replay them as a restarted trainer and a lost
    answer would: every replay must be answered from the stored response."""
    assert paced.post_outcomes("r", outcomes, idempotency_key=key).accepted == len(outcomes)
    posted.items += len(outcomes)
    posted.attempts += sum(o["attempts"] for o in outcomes)
    posted.successes += sum(o["successes"] for o in outcomes)
    # The trainer crashes after posting and replays on restart: same key, same chunks
    # (f"{key}-{i}").
    assert paced.post_outcomes("r", outcomes, idempotency_key=key).accepted == len(outcomes)
    # An HTTP retry of one chunk whose answer was lost: round-robin sends the retry to the
    # other replica, which knows the key from the database.
    chunk = {"outcomes": outcomes[:CHUNK]}
    headers = {"Idempotency-Key": f"{key}-0"}
    first = http.post("/v1/runs/r/outcomes", json=chunk, headers=headers)
    again = http.post("/v1/runs/r/outcomes", json=chunk, headers=headers)
    assert first.json() == again.json() == {"accepted": len(chunk["outcomes"])}
    posted.retries += 1
    posted.retries_elsewhere += first.headers["X-Paced-Replica"] != again.headers["X-Paced-Replica"]


def test_trainer_through_the_load_balancer_loses_and_doubles_nothing(load_balancer):
    balancer, replicas = load_balancer
    served_by: Counter[str] = Counter()  # every response the client got, by replica
    hooks = {"response": [lambda response: served_by.update([response.headers["X-Paced-Replica"]])]}
    rng = random.Random(0)
    posted = Posted()
    with (
        httpx.Client(base_url=balancer.url, headers=ADMIN, timeout=30, event_hooks=hooks) as http,
        PacedClient(balancer.url, token=TOKEN, chunk_size=CHUNK, http_client=http) as paced,
    ):
        paced.create_dataset("math")
        problems = [
            {"id": f"p{i:03d}", "prompt": f"{i} + 1 = ?", "answer": str(i + 1)}
            for i in range(PROBLEMS)
        ]
        paced.upsert_problems("math", problems)
        paced.create_run("r", "math")
        # The initial estimate: every problem, at step 0.
        ids = [p["id"] for p in problems]
        post_with_retries(paced, http, graded(ids, 0, rng), "estimate", posted)
        for step in range(1, STEPS + 1):
            # Every rank of a trainer asks for the step's batch under one draw key: pinned in
            # the database, so each replica answers with the first draw's items.
            pinned = [draw(http, 1000 + step, f"r/step{step}") for _ in range(4)]
            assert {replica for replica, _ in pinned} == set(REPLICAS)
            assert all(batch == pinned[0][1] for _, batch in pinned)
            drawn = [item["problem_id"] for item in pinned[0][1]["items"]]
            assert len(drawn) == BATCH
            post_with_retries(paced, http, graded(drawn, step, rng), f"step{step}", posted)

        # No lost and no double-counted outcome: the database's counts are what was posted once.
        weights = list(paced.iter_weights("r", limit=1000))
        recorded = (sum(w.attempts for w in weights), sum(w.successes for w in weights))
        assert recorded == (posted.attempts, posted.successes)
        # ... and so is what the replicas ingested between them (replays are not counted).
        ingested = [replica_counter(r, "paced_outcomes_ingested") for r in replicas]
        attempts = [replica_counter(r, "paced_attempts_ingested") for r in replicas]
        assert sum(ingested) == posted.items and sum(attempts) == posted.attempts
        assert all(count > 0 for count in ingested)  # both replicas took writes

        # The same seed gives the same batch whichever replica serves it, once each replica's
        # index has pulled the other's writes (PACED_SYNC_INTERVAL_S = 0.25 s).
        time.sleep(1.0)
        for seed in range(5):
            draws = [draw(http, seed) for _ in range(4)]
            assert {replica for replica, _ in draws} == set(REPLICAS)
            assert all(batch == draws[0][1] for _, batch in draws), f"seed {seed}"
            assert len(draws[0][1]["items"]) == BATCH

    lb_counts = balancer.requests_per_replica()
    replica_requests = [replica_counter(r, "paced_http_requests") for r in replicas]
    print(
        f"\noutcomes posted {posted.items} (attempts {posted.attempts}, successes "
        f"{posted.successes}); recorded (attempts, successes) {recorded}; ingested outcomes per "
        f"replica {ingested}; responses per replica {dict(served_by)}; haproxy sessions per "
        f"replica {lb_counts}; requests counted by the replicas {replica_requests}; "
        f"chunk retries answered by the other replica {posted.retries_elsewhere}/{posted.retries}"
    )
    assert posted.retries_elsewhere > 0
    assert all(served_by[name] > 0 and lb_counts[name] > 0 for name in REPLICAS)
    assert sum(lb_counts.values()) >= sum(served_by.values())

"""Batches served from memory (warm index, cached problem texts) equal the database path,
and overwritten problems never stay stale beyond the sync interval."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.domain import runs as runs_domain
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes


def make_client(database_url: str, **settings) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, **settings)))


def seed(client: TestClient, n: int = 200) -> None:
    make_dataset(client, n=n)
    make_run(client)
    outcomes = [{"problem_id": f"p{i}", "attempts": 8, "successes": i % 9} for i in range(0, n, 2)]
    assert post_outcomes(client, "run1", outcomes).status_code == 200


def draw(client: TestClient, seed_value: int, size: int = 32, mode: str = "proportional"):
    response = client.post(
        "/v1/runs/run1/batches", json={"size": size, "seed": seed_value, "mode": mode}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_memory_path_serves_the_same_batches_as_the_database_path(database_url, mode):
    with (
        make_client(database_url, sync_interval_s=60) as warm,
        make_client(database_url, sync_interval_s=0, prompt_cache_mb=0) as cold,
    ):
        seed(warm)
        prompts = warm.app.state.ctx.prompts
        first = [draw(warm, s, mode=mode) for s in range(5)]  # fills the cache
        hits_before = prompts.hits
        again = [draw(warm, s, mode=mode) for s in range(5)]
        assert prompts.hits - hits_before == sum(len(b["items"]) for b in again)
        assert again == first
        assert [draw(cold, s, mode=mode) for s in range(5)] == first
        assert cold.app.state.ctx.prompts.hits == 0  # the cache really was off there


def test_outcomes_posted_here_reach_the_memory_path_at_once(database_url):
    with make_client(database_url, sync_interval_s=60) as client:
        seed(client, n=20)
        available = draw(client, 0)["available"]
        # p1 was unseen; p18 (0 of 8 so far, intractable) joins the frontier too.
        fresh = [
            {"problem_id": "p1", "attempts": 8, "successes": 4},
            {"problem_id": "p18", "attempts": 8, "successes": 4},
        ]
        assert post_outcomes(client, "run1", fresh).status_code == 200
        batch = draw(client, 0, size=100)
        assert batch["available"] == available + 2
        by_id = {item["problem_id"]: item for item in batch["items"]}
        assert by_id["p1"]["pass_rate"] == 0.5
        assert by_id["p18"]["pass_rate"] == 0.25


def test_overwritten_prompt_is_served_at_once_by_the_process_that_wrote_it(database_url):
    with make_client(database_url, sync_interval_s=60) as client:
        seed(client, n=10)
        before = draw(client, 3, size=5)
        draw(client, 3, size=5)  # now cached
        problems = [
            {"id": item["problem_id"], "prompt": "new " + item["prompt"], "answer": "42"}
            for item in before["items"]
        ]
        response = client.post("/v1/datasets/math/problems", json={"problems": problems})
        assert len(problems) == 3  # p2, p4, p6 are the frontier
        assert response.json() == {"inserted": 0, "updated": 3}
        after = draw(client, 3, size=5)
        assert [i["prompt"] for i in after["items"]] == [
            "new " + i["prompt"] for i in before["items"]
        ]
        assert {i["answer"] for i in after["items"]} == {"42"}


def test_another_replica_drops_overwritten_prompts_within_its_sync_interval(database_url):
    interval = 0.3
    with (
        make_client(database_url, sync_interval_s=interval) as writer,
        make_client(database_url, sync_interval_s=interval) as reader,
    ):
        seed(writer, n=10)
        before = draw(reader, 5, size=5)
        draw(reader, 5, size=5)
        assert reader.app.state.ctx.prompts.hits > 0
        changed = [{"id": i["problem_id"], "prompt": "edited"} for i in before["items"]]
        writer.post("/v1/datasets/math/problems", json={"problems": changed})
        time.sleep(interval * 1.2)
        assert {i["prompt"] for i in draw(reader, 5, size=5)["items"]} == {"edited"}


def test_a_tiny_cache_evicts_and_stays_correct(database_url):
    budget_mb = 0.002  # ~2 kB: a handful of entries
    with (
        make_client(database_url, sync_interval_s=60, prompt_cache_mb=budget_mb) as small,
        make_client(database_url, sync_interval_s=0, prompt_cache_mb=0) as cold,
    ):
        seed(small)
        for s in range(10):
            assert draw(small, s) == draw(cold, s)
            assert small.app.state.ctx.prompts.nbytes <= budget_mb * 2**20


def test_metrics_report_the_prompt_cache(client):
    seed(client, n=10)
    draw(client, 1, size=4)
    text = client.get("/metrics").text
    assert 'paced_prompt_cache{what="misses"}' in text
    assert 'paced_prompt_cache{what="bytes"}' in text


def _index_state(client: TestClient) -> dict:
    ctx = client.app.state.ctx
    with ctx.transaction() as uow:
        ref = runs_domain.require_ref(uow, "run1", ctx.run_refs)
        entry = ctx.registry.get(uow.session, ref)
    with entry.lock:
        index = entry.index
        state = index.stats_of(index._ids)
    return {k: np.asarray(v).tolist() for k, v in state.items()}


def test_own_writes_applied_from_returned_rows_equal_a_rebuild(database_url):
    spec = {"estimator": {"kind": "posterior", "half_life_steps": 3.0}}
    with (
        make_client(database_url, sync_interval_s=60) as writer,
        make_client(database_url, sync_interval_s=60) as other,
    ):
        make_dataset(writer, n=30)
        make_run(writer, **spec)
        rng = np.random.default_rng(0)
        draw(writer, 0)  # the writer's index exists before its writes
        for step in range(6):
            outcomes = [
                {"problem_id": f"p{i}", "attempts": 4, "successes": int(k), "step": step}
                for i, k in zip(rng.integers(0, 30, 25), rng.integers(0, 5, 25), strict=True)
            ]
            poster = other if step == 3 else writer  # one write the writer must sync
            assert post_outcomes(poster, "run1", outcomes).status_code == 200
        with make_client(database_url, sync_interval_s=60) as fresh:
            expected = _index_state(fresh)
        got = _index_state(writer)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(
            np.array(got[key], dtype=float), np.array(expected[key], dtype=float), rtol=1e-12
        )


def test_first_use_prefills_the_prompt_cache_so_new_draws_read_nothing(database_url):
    with (
        make_client(database_url, sync_interval_s=60) as warm,
        make_client(database_url, sync_interval_s=60, prompt_prefill=False) as plain,
    ):
        seed(warm)
        prompts = warm.app.state.ctx.prompts
        draw(warm, 0, size=1)  # first use: builds the index, starts the prefill
        deadline = time.monotonic() + 10
        while len(prompts) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        misses = prompts.misses
        batches = [draw(warm, s, size=64, mode="uniform") for s in range(1, 6)]
        assert prompts.misses == misses  # never-served problems, all found in memory
        draw(plain, 0, size=1)
        plain_misses = plain.app.state.ctx.prompts.misses
        assert [draw(plain, s, size=64, mode="uniform") for s in range(1, 6)] == batches
        assert plain.app.state.ctx.prompts.misses > plain_misses  # without: read on demand


def test_prefill_waits_while_a_request_is_in_flight(database_url):
    """The prefill holds the GIL while it scans; it must not run beside requests (it doubled
    a back-to-back client's latency), only in the gaps between them."""
    with make_client(database_url, sync_interval_s=60) as client:
        seed(client)
        ctx = client.app.state.ctx
        ctx.activity.started()  # a long request, still in flight
        draw(client, 0, size=1)  # first use: starts the prefill, which has to wait
        time.sleep(0.5)
        assert len(ctx.prompts) == 1  # only the drawn problem's text
        ctx.activity.finished()
        deadline = time.monotonic() + 10
        while len(ctx.prompts) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(ctx.prompts) == 200  # then it warms the whole dataset

"""PacedClient and AsyncPacedClient against a real service process.

Starts `paced serve` (migrations + uvicorn, SQLite in a temp dir) on a free port once for this
module and drives every client method over real HTTP. Expected values are computed here from
the outcomes posted (w = p(1-p) for the default kernel), not copied from the service.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from tests.client.client_fakes import NO_WAIT
from trainer_client.async_client import AsyncPacedClient
from trainer_client.client import PacedClient
from trainer_client.errors import Conflict, NotFound, ValidationFailed
from trainer_client.local.service import local_service

DATASET = "arith-live"
PROBLEM_IDS = [f"p{i:02d}" for i in range(30)] + ["set/7"]
# Outcomes of the "graded" problems: 8 rollouts each, this many passed.
SUCCESSES = {f"p{i:02d}": s for i, s in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 4])}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> str:
    with local_service(tmp_path_factory.mktemp("paced-live"), timeout_s=30) as url:
        _seed_dataset(url)
        yield url


def _seed_dataset(url: str) -> None:
    # chunk_size=10: the 31 problems go in 4 requests, exercising chunked upserts for real.
    with PacedClient(url, chunk_size=10) as paced:
        paced.create_dataset(DATASET, "sums")
        problems = [{"id": pid, "prompt": f"{pid}: 1+1?", "answer": "2"} for pid in PROBLEM_IDS]
        result = paced.upsert_problems(DATASET, problems)
        assert (result.inserted, result.updated) == (31, 0)


@pytest.fixture
def paced(base_url):
    with PacedClient(base_url, backoff=NO_WAIT) as client:
        yield client


def _new_run(paced: PacedClient, name: str, graded: bool = True) -> None:
    paced.create_run(name, DATASET)
    if graded:
        outcomes = [
            {"problem_id": pid, "attempts": 8, "successes": s, "step": 5}
            for pid, s in SUCCESSES.items()
        ]
        assert paced.post_outcomes(name, outcomes).accepted == len(outcomes)


def _w(successes: int, attempts: int = 8) -> float:
    p = successes / attempts
    return p * (1 - p)


# ---- datasets and problems ---------------------------------------------------------------------


def test_health_and_datasets(paced):
    assert paced.health().status == "ok"
    dataset = paced.get_dataset(DATASET)
    assert dataset.problem_count == len(PROBLEM_IDS) and dataset.description == "sums"
    assert DATASET in [d.name for d in paced.list_datasets()]
    with pytest.raises(Conflict):
        paced.create_dataset(DATASET)
    with pytest.raises(NotFound):
        paced.get_dataset("no-such-dataset")


def test_problems_upsert_updates_and_ids_with_slashes(paced):
    problem = paced.get_problem(DATASET, "set/7")
    assert problem.prompt == "set/7: 1+1?" and problem.answer == "2"
    result = paced.upsert_problems(
        DATASET, [{"id": "set/7", "prompt": "set/7: 1+1?", "answer": "2", "metadata": {"v": 2}}]
    )
    assert (result.inserted, result.updated) == (0, 1)
    assert paced.get_problem(DATASET, "set/7").metadata == {"v": 2}
    with pytest.raises(NotFound):
        paced.get_problem(DATASET, "missing")


# ---- runs and outcomes -------------------------------------------------------------------------


def test_runs_are_created_listed_and_validated(paced):
    run = paced.create_run(
        "run-settings", DATASET, kernel={"alpha": 2.0}, estimator={"kind": "posterior"}
    )
    assert run.kernel.alpha == 2.0 and run.kernel.beta == 1.0
    assert run.estimator.kind == "posterior"
    assert paced.get_run("run-settings").estimator.kind == "posterior"
    assert "run-settings" in [r.name for r in paced.list_runs()]
    with pytest.raises(Conflict):
        paced.create_run("run-settings", DATASET)
    with pytest.raises(ValidationFailed):
        paced.create_run("Bad Name", DATASET)
    with pytest.raises(NotFound):
        paced.create_run("run-orphan", "no-such-dataset")


def test_outcomes_update_stats_and_step(paced):
    _new_run(paced, "run-stats")
    assert paced.get_run("run-stats").step == 5
    stats = paced.get_problem_stats("run-stats", "p03")
    assert (stats.attempts, stats.successes, stats.zone) == (8, 3, "frontier")
    assert stats.pass_rate == pytest.approx(3 / 8) and stats.weight == pytest.approx(_w(3))
    assert paced.get_problem_stats("run-stats", "p00").zone == "intractable"
    assert paced.get_problem_stats("run-stats", "p08").zone == "mastered"
    unseen = paced.get_problem_stats("run-stats", "p20")
    assert (unseen.zone, unseen.attempts, unseen.pass_rate) == ("unseen", 0, None)


def test_a_replayed_outcome_post_counts_once(paced):
    _new_run(paced, "run-replay", graded=False)
    chunk = [{"problem_id": "p01", "attempts": 4, "successes": 1}]
    first = paced.post_outcomes("run-replay", chunk, idempotency_key="chunk-1")
    second = paced.post_outcomes("run-replay", chunk, idempotency_key="chunk-1")
    assert first == second
    assert paced.get_problem_stats("run-replay", "p01").attempts == 4
    with pytest.raises(Conflict):
        paced.post_outcomes("run-replay", [dict(chunk[0], successes=2)], idempotency_key="chunk-1")


class _LoseFirstResponse(httpx.BaseTransport):
    """Delivers every request to the real server but loses the first response, as a read
    timeout after the server committed would: the retry must not double-count."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.keys.append(request.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            response.read()
            response.close()
            raise httpx.ReadTimeout("response lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_client_retry_after_a_lost_response_counts_once(paced, base_url):
    _new_run(paced, "run-lost", graded=False)
    transport = _LoseFirstResponse()
    with PacedClient(base_url, transport=transport, backoff=NO_WAIT) as flaky:
        result = flaky.post_outcomes(
            "run-lost", [{"problem_id": "p02", "attempts": 8, "successes": 2}]
        )
    assert result.accepted == 1
    assert len(transport.keys) == 2 and transport.keys[0] == transport.keys[1]
    assert paced.get_problem_stats("run-lost", "p02").attempts == 8


def test_unknown_problem_ids_reject_the_whole_post(paced):
    _new_run(paced, "run-unknown", graded=False)
    outcomes = [
        {"problem_id": "p01", "attempts": 2, "successes": 1},
        {"problem_id": "nope", "attempts": 2, "successes": 1},
    ]
    with pytest.raises(ValidationFailed) as caught:
        paced.post_outcomes("run-unknown", outcomes)
    assert caught.value.offending_items == ["nope"]
    assert paced.get_problem_stats("run-unknown", "p01").attempts == 0


def test_chunked_outcomes_all_arrive(base_url, paced):
    _new_run(paced, "run-chunks", graded=False)
    outcomes = [{"problem_id": f"p{i:02d}", "attempts": 2, "successes": 1} for i in range(10, 20)]
    with PacedClient(base_url, chunk_size=4) as small_chunks:
        assert small_chunks.post_outcomes("run-chunks", outcomes, "chunked").accepted == 10
        # The same key again replays all three chunks: nothing is counted twice.
        assert small_chunks.post_outcomes("run-chunks", outcomes, "chunked").accepted == 10
    assert paced.get_problem_stats("run-chunks", "p19").attempts == 2


# ---- reading the curriculum --------------------------------------------------------------------


def test_weights_by_id_and_by_pages(paced):
    _new_run(paced, "run-weights")
    page = paced.weights("run-weights", problem_ids=["p03", "set/7"])
    assert [i.problem_id for i in page.items] == ["p03", "set/7"]
    assert page.items[0].weight == pytest.approx(_w(3)) and page.items[1].weight == 0
    items = list(paced.iter_weights("run-weights", limit=7))
    assert sorted(i.problem_id for i in items) == sorted(PROBLEM_IDS)
    by_id = {i.problem_id: i.weight for i in items}
    for pid, successes in SUCCESSES.items():
        assert by_id[pid] == pytest.approx(_w(successes))


def test_a_batch_before_any_outcome_is_a_conflict_that_says_why(paced):
    paced.create_run("run-empty", DATASET)
    with pytest.raises(Conflict, match="no outcomes"):
        paced.batch("run-empty", 4)


def test_a_fresh_run_queues_unseen_problems(paced):
    paced.create_run("run-fresh", DATASET)
    queue = paced.rollout_queue("run-fresh", limit=len(PROBLEM_IDS))
    assert sorted(i.problem_id for i in queue.items) == sorted(PROBLEM_IDS)
    assert {i.reason for i in queue.items} == {"unseen"}


def test_batches(paced):
    _new_run(paced, "run-batches")
    eligible = {pid for pid, s in SUCCESSES.items() if 0 < s < 8}
    first = paced.batch("run-batches", 5, seed=3)
    assert [i.problem_id for i in first.items] == [
        i.problem_id for i in paced.batch("run-batches", 5, seed=3).items
    ]
    ids = [i.problem_id for i in first.items]
    assert len(ids) == len(set(ids)) == 5 and set(ids) <= eligible
    assert all(i.loss_weight == 1 and i.weight > 0 for i in first.items)
    everything = paced.batch("run-batches", 50, seed=1)
    assert everything.available == len(eligible) == len(everything.items)
    uniform = paced.batch("run-batches", 50, seed=1, mode="uniform")
    assert len(uniform.items) == len(SUCCESSES)  # every problem with an estimate
    mean_loss_weight = sum(i.loss_weight for i in uniform.items) / len(uniform.items)
    assert mean_loss_weight == pytest.approx(1.0)


def test_rollout_queue_and_difficulty(paced):
    _new_run(paced, "run-difficulty")
    queue = paced.rollout_queue("run-difficulty", limit=5)
    assert len(queue.items) == 5 and {i.reason for i in queue.items} == {"unseen"}
    assert not {i.problem_id for i in queue.items} & SUCCESSES.keys()
    summary = paced.difficulty("run-difficulty", bins=4)
    assert summary.problems == len(PROBLEM_IDS)
    zones = summary.zones
    assert (zones.unseen, zones.intractable, zones.mastered) == (21, 1, 1)
    assert zones.frontier == 8
    assert len(summary.histogram.edges) == 5 and len(summary.histogram.counts) == 4
    weights = [w for w in (_w(s) for s in SUCCESSES.values()) if w > 0]
    shares = [w / sum(weights) for w in weights]
    effective = math.exp(-sum(p * math.log(p) for p in shares))
    assert summary.effective_problems == pytest.approx(effective, rel=1e-6)


# ---- across runs: summary, comparison, one problem's history -----------------------------------


def test_runs_summary_compare_and_problem_history(base_url, paced):
    _new_run(paced, "cmp-a")
    paced.create_run("cmp-b", DATASET)
    paced.post_outcomes("cmp-b", [{"problem_id": "p04", "attempts": 8, "successes": 8, "step": 6}])
    summary = {s.run.name: s for s in paced.runs_summary(name="cmp-*")}
    assert sorted(summary) == ["cmp-a", "cmp-b"]
    assert summary["cmp-a"].latest.step == 5 and summary["cmp-b"].latest.zones.mastered == 1
    assert paced.runs_summary(dataset="no-such-dataset") == []
    comparison = paced.compare(["cmp-a", "cmp-b"], top=3)
    assert comparison.dataset == DATASET and comparison.pair == ["cmp-a", "cmp-b"]
    (row,) = comparison.differences  # p04 is the only problem both runs have seen
    assert row.problem_id == "p04" and row.pass_rates == [SUCCESSES["p04"] / 8, 1.0]
    history = paced.problem_history("cmp-a", "p04")
    assert [(s.step, s.attempts, s.successes) for s in history.steps] == [(5, 8, SUCCESSES["p04"])]
    with pytest.raises(ValidationFailed) as refused:
        paced.compare(["cmp-a"])
    assert "runs" in str(refused.value)

    async def main():
        async with AsyncPacedClient(base_url, backoff=NO_WAIT) as client:
            return (
                await client.runs_summary(name="cmp-*"),
                await client.compare(["cmp-b", "cmp-a"]),
                await client.problem_history("cmp-b", "p04"),
            )

    runs, flipped, problem = asyncio.run(main())
    assert [s.run.name for s in runs] == ["cmp-a", "cmp-b"]
    assert flipped.differences[0].difference == pytest.approx(1.0 - SUCCESSES["p04"] / 8)
    assert problem.stats.zone == "mastered" and problem.complete


# ---- the async twin ----------------------------------------------------------------------------


def test_async_client_end_to_end(base_url, paced):
    _new_run(paced, "run-async", graded=False)
    chunk = [{"problem_id": "p04", "attempts": 8, "successes": 4}]

    async def main():
        async with AsyncPacedClient(base_url, backoff=NO_WAIT) as client:
            assert (await client.health()).status == "ok"
            assert (await client.get_run("run-async")).dataset == DATASET
            for _ in range(2):  # a replay with the same key
                await client.post_outcomes("run-async", chunk, idempotency_key="async-1")
            batch = await client.batch("run-async", 3, seed=0)
            weights = [i async for i in client.iter_weights("run-async", limit=10)]
            return batch, weights

    batch, weights = asyncio.run(main())
    assert [i.problem_id for i in batch.items] == ["p04"] and batch.available == 1
    assert len(weights) == len(PROBLEM_IDS)
    assert paced.get_problem_stats("run-async", "p04").attempts == 8


# ---- several consumers: fill, leases, pinned draws ---------------------------------------------


def test_fill_leases_and_pinned_draws_through_both_clients(base_url, paced):
    _new_run(paced, "run-consumers")
    first = paced.rollout_queue("run-consumers", limit=4, claimer="a", lease_s=60)
    second = paced.rollout_queue("run-consumers", limit=4, claimer="b")
    assert not {i.problem_id for i in first.items} & {i.problem_id for i in second.items}
    batch = paced.batch(
        "run-consumers", 12, seed=1, fill="unseen_then_uniform", lease={"claimer": "t"}
    )
    assert len(batch.items) == 12 and batch.sources == {
        "drawn": 8,  # the eight frontier problems of SUCCESSES
        "fill_unseen": 4,
        "fill_uniform": 0,
    }
    assert {i.source for i in batch.items} == {"drawn", "fill_unseen"}

    async def pinned():
        async with AsyncPacedClient(base_url, backoff=NO_WAIT) as client:
            spec = {"seed": 2, "fill": "unseen", "draw_key": "k1", "skip_leased": True}
            one = await client.batch("run-consumers", 3, **spec)
            await client.post_outcomes(
                "run-consumers", [{"problem_id": "p20", "attempts": 2, "successes": 1}]
            )
            two = await client.batch("run-consumers", 3, **spec)
            claimed = await client.rollout_queue("run-consumers", limit=2, claimer="c")
            return one, two, claimed

    one, two, claimed = asyncio.run(pinned())
    assert one == two and len(one.items) == 3
    leased = {i.problem_id for i in first.items + second.items + batch.items}
    assert not {i.problem_id for i in one.items} & leased
    assert len(claimed.items) == 2
    with pytest.raises(ValueError, match="claimer"):
        paced.rollout_queue("run-consumers", lease_s=5)


def test_a_setup_script_can_be_run_twice_with_exist_ok(paced):
    created = paced.create_run("rerun", DATASET, estimator={"kind": "posterior"})
    assert created.estimator.window == "latest"  # the service's default, not the client's
    again = paced.create_run("rerun", DATASET, estimator={"kind": "posterior"}, exist_ok=True)
    assert again.name == "rerun" and again.created_at == created.created_at
    assert paced.create_dataset(DATASET, "sums", exist_ok=True).problem_count == 31
    with pytest.raises(Conflict, match="exist_ok"):  # without it an existing run is refused
        paced.create_run("rerun", DATASET, estimator={"kind": "posterior"})
    with pytest.raises(Conflict, match="estimator.kind 'posterior', not 'empirical'"):
        paced.create_run("rerun", DATASET, exist_ok=True)


def test_the_async_twin_gets_or_creates_too(base_url):
    async def main() -> tuple[str, str]:
        async with AsyncPacedClient(base_url, backoff=NO_WAIT) as paced:
            first = await paced.create_run("rerun-async", DATASET)
            second = await paced.create_run("rerun-async", DATASET, exist_ok=True)
            return first.name, second.name

    assert asyncio.run(main()) == ("rerun-async", "rerun-async")

"""The zero-variance gate (trainer/gate.py) against a real service, SQLite and PostgreSQL.

- exact counts: every group rolled out is posted once, under a lost answer and its retry,
  and when the same groups are posted again (a duplicated reward call);
- a refill never returns a problem the step already rolled out;
- the per-step rollout budget is never exceeded, and a spent budget is reported.
"""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.transports import DropFirstOutcomesResponse
from trainer_client.client import PacedClient
from trainer_client.local.service import local_service
from trainer_client.trainer.gate import RolledGroup, ZeroVarianceGate, rolled_group

DATASET = "gate"
K = 4
# 90 problems: a third never solved, a third always solved, a third solved by half the
# attempts. Only the last third has reward variance.
PROBLEMS = [f"p{i:02d}" for i in range(90)]
HOPELESS = set(PROBLEMS[0::3])
SOLVED = set(PROBLEMS[1::3])


def rewards_of(problem_id: str) -> list[float]:
    if problem_id in HOPELESS:
        return [0.0] * K
    if problem_id in SOLVED:
        return [1.0] * K
    return [float(j % 2) for j in range(K)]


class Rollouts:
    """The policy: graded groups, and every problem it was asked to roll out, per call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.groups: list[list[RolledGroup]] = []

    def __call__(self, items) -> list[RolledGroup]:
        ids = [item.problem_id for item in items]
        self.calls.append(ids)
        self.groups.append([rolled_group(pid, rewards_of(pid)) for pid in ids])
        return self.groups[-1]


@pytest.fixture(scope="module", params=BACKENDS)
def service_url(request, tmp_path_factory):
    database_url = server_url = None
    if request.param == "postgres":
        server_url = request.getfixturevalue("postgres_server_url")
        database_url = create_pg_database(server_url)
    try:
        directory = tmp_path_factory.mktemp(f"gate-{request.param}")
        with local_service(directory, timeout_s=60, database_url=database_url) as url:
            with PacedClient(url) as paced:
                paced.create_dataset(DATASET)
                paced.upsert_problems(
                    DATASET, [{"id": pid, "prompt": f"{pid}?"} for pid in PROBLEMS]
                )
            yield url
    finally:
        if database_url is not None:
            drop_pg_database(server_url, database_url)


def totals(paced: PacedClient, run: str) -> tuple[int, int]:
    weights = list(paced.iter_weights(run))
    return sum(int(w.attempts) for w in weights), sum(int(w.successes) for w in weights)


def expected_totals(calls: list[list[str]]) -> tuple[int, int]:
    ids = [pid for call in calls for pid in call]
    return K * len(ids), sum(int(sum(rewards_of(pid))) for pid in ids)


def run_steps(paced, run, steps, *, size=8, max_groups=24, mode="proportional", **options):
    gate = ZeroVarianceGate(paced, run, size=size, max_groups=max_groups, mode=mode, **options)
    rollouts = Rollouts()
    results = []
    for step in range(steps):
        first = paced.batch(run, size, seed=step, mode=mode, fill="unseen_then_uniform").items
        results.append(gate.step(step, first, rollouts))
    return gate, rollouts, results


def test_every_group_counts_once_under_a_lost_answer_and_a_duplicated_call(service_url):
    transport = DropFirstOutcomesResponse()
    with PacedClient(service_url, transport=transport, backoff=None) as paced:
        # window "all": the counts are every outcome ever posted, not the newest round's.
        paced.create_run("counts", DATASET, estimator={"kind": "empirical", "window": "all"})
        gate, rollouts, results = run_steps(paced, "counts", 4)
    # The lost answer was retried under the same key, and applied once.
    assert transport.outcome_keys[0] == transport.outcome_keys[1]
    with PacedClient(service_url) as paced:
        generated = sum(r.stats.generated for r in results)
        assert sum(len(call) for call in rollouts.calls) == generated
        assert totals(paced, "counts") == expected_totals(rollouts.calls)
        # The same groups posted again (TRL calling the reward twice, a replayed step that
        # re-rolls the same seeded samples): the key is the content's, nothing is added.
        gate.client = paced
        for _ in range(2):
            gate.record(3, rollouts.groups[-1])  # the last round of step 3
            gate.record(0, rollouts.groups[0])  # the first batch of step 0
        assert totals(paced, "counts") == expected_totals(rollouts.calls)
        # Dropped groups were counted too: the zero-variance problems are now known.
        zones = paced.difficulty("counts").zones
        assert zones.intractable + zones.mastered >= sum(len(r.dropped) for r in results) > 0


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_a_refill_never_returns_a_problem_the_step_rolled_out(service_url, mode):
    with PacedClient(service_url) as paced:
        paced.create_run(f"fresh-{mode}", DATASET, estimator={"kind": "posterior"})
        _, rollouts, results = run_steps(paced, f"fresh-{mode}", 6, mode=mode, max_groups=40)
    calls = iter(rollouts.calls)
    refills = 0
    for result in results:
        assert len(result.seen) == len(set(result.seen))  # no problem twice in one step
        rounds = [next(calls) for _ in range(1 + result.stats.refills - result.stats.exhausted)]
        assert [pid for call in rounds for pid in call] == result.seen
        refills += result.stats.refills
        kept = [g.problem_id for g in result.kept]
        assert len(kept) == 8 and not any(g.zero_variance for g in result.kept)
        assert all(pid not in HOPELESS | SOLVED for pid in kept)
        assert all(g.zero_variance for g in result.dropped)
    assert next(calls, None) is None
    assert refills > 0  # the test exercised refills


def test_the_rollout_budget_is_respected_and_a_spent_budget_reported(service_url):
    with PacedClient(service_url) as paced:
        # Every problem known and uniform draws: two in three groups come back zero-variance.
        paced.create_run("budget", DATASET, estimator={"kind": "posterior"})
        gate, rollouts, results = run_steps(
            paced, "budget", 5, size=8, max_groups=10, mode="uniform"
        )
    calls = iter(rollouts.calls)
    for result in results:
        stats = result.stats
        rolled = [next(calls) for _ in range(1 + stats.refills - stats.exhausted)]
        assert stats.generated == sum(len(call) for call in rolled) == len(result.seen) <= 10
        assert stats.kept <= 8
        if stats.budget_hit:
            assert stats.generated == 10 and stats.short > 0
    assert any(r.stats.budget_hit for r in results)
    metrics = results[0].stats.metrics()
    assert metrics["paced_gate/generated_groups"] == results[0].stats.generated
    assert 0 < metrics["paced_gate/zero_variance_share"] < 1


def test_paced_refills_skip_what_the_service_knows_to_be_zero_variance(service_url):
    with PacedClient(service_url) as paced:
        paced.create_run("learns", DATASET)  # empirical: p in {0, 1} has weight 0
        _, _, results = run_steps(paced, "learns", 12, size=6, max_groups=30, fill="unseen")
    early = sum(r.stats.zero_variance for r in results[:4]) / sum(
        r.stats.generated for r in results[:4]
    )
    late = sum(r.stats.zero_variance for r in results[-4:]) / sum(
        r.stats.generated for r in results[-4:]
    )
    assert late < early
    assert all(r.stats.kept == 6 for r in results[-4:])


def test_a_step_with_nothing_left_to_draw_reports_it(service_url):
    with PacedClient(service_url) as paced:
        paced.create_dataset("gate-tiny")
        paced.upsert_problems("gate-tiny", [{"id": pid, "prompt": "?"} for pid in PROBLEMS[:6]])
        paced.create_run("tiny", "gate-tiny", estimator={"kind": "posterior"})
        gate = ZeroVarianceGate(paced, "tiny", size=4, max_groups=40, mode="uniform")
        first = paced.batch("tiny", 4, seed=0, mode="uniform").items
        result = gate.step(0, first, Rollouts())
    # p02 and p05 are the only problems with variance among the six.
    assert sorted(g.problem_id for g in result.kept) == ["p02", "p05"]
    assert result.stats.exhausted and not result.stats.budget_hit
    assert sorted(result.seen) == PROBLEMS[:6]


def test_the_tally_counts_flat_groups_as_the_gate_does():
    # What the verl buffer reports per sample (GroupTally); NaN rewards (unscorable) are left
    # out, and a group with fewer than two scored attempts has no variance.
    from trainer_client.trainer.gate import GroupTally

    tally = GroupTally()
    for rewards in ([1.0, 0.0], [1.0, 1.0], [0.5, 0.5 + 1e-12], [float("nan"), 1.0], [0.0, 0.3]):
        tally.add(rewards)
    assert tally.metrics("g/") == {
        "g/generated_groups": 5.0,
        "g/zero_variance_groups": 3.0,
        "g/zero_variance_share": 0.6,
    }
    tally.reset()
    assert tally.metrics("g/")["g/generated_groups"] == 0.0

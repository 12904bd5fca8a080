"""paced's slime adapter against slime's plug-in contracts and default rollout as mirrored in
tests/integrations/slime_stub.py (slime itself is not installable here), with a live service
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from tests.integrations import slime_stub
from tests.integrations.live_service import create_run, service_url, stats
from tests.integrations.slime_stub import Sample
from trainer_client.integrations.slime import PacedDataSource
from trainer_client.tasks import toy

__all__ = ["service_url"]  # the fixture: every test runs on each backend
SOURCE = "trainer_client.integrations.slime.PacedDataSource"
PROCESS = "trainer_client.integrations.slime.post_all_groups"


@pytest.fixture(autouse=True)
def slime(monkeypatch):
    slime_stub.install(monkeypatch)


def setup_run(url: str, run: str, count: int = 12) -> None:
    rows = toy.problems(count)
    create_run(url, run, [{"id": r["problem_id"], "prompt": r["prompt"]} for r in rows])


def args_for(url: str, run: str, **overrides):
    settings = {
        "paced_url": url,
        "paced_run": run,
        "n_samples_per_prompt": 4,
        "rollout_batch_size": 2,
        "over_sampling_batch_size": 3,
        "partial_rollout": True,
        "rollout_all_samples_process_path": PROCESS,
        "save": None,
        "load": None,
        **overrides,
    }
    return slime_stub.make_args(**settings)


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def grade(sample: Sample) -> None:
    """Deterministic: a third of the problems always pass, a third always fail (groups the
    dynamic filter drops), the rest pass about half the time; one sample in seven fails to
    generate (FAILED: errored, not a failed attempt)."""
    pid = sample.metadata["problem_id"]
    kind, coin = digest(pid) % 3, digest(f"{pid}:{sample.index}")
    if coin % 7 == 0:
        sample.status, sample.reward = Sample.Status.FAILED, None
        return
    sample.status = Sample.Status.COMPLETED
    sample.reward = 1.0 if kind == 0 else 0.0 if kind == 1 else float(coin % 2)


def expected(groups: list[list[Sample]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for group in groups:
        tally = counts.setdefault(group[0].metadata["problem_id"], [0, 0])
        graded = [s for s in group if s.status is Sample.Status.COMPLETED]
        tally[0] += len(graded)
        tally[1] += sum(s.reward == 1.0 for s in graded)
    return {pid: (n, k) for pid, (n, k) in counts.items()}


def test_the_adapter_passes_slimes_path_loading_contract_checks(monkeypatch, service_url):
    setup_run(service_url, "slime-contract")
    monkeypatch.setenv("PACED_URL", service_url)  # slime's bare contract args carry no paced_*
    monkeypatch.setenv("PACED_RUN", "slime-contract")
    slime_stub.check_data_source_path(SOURCE)
    slime_stub.check_rollout_all_samples_process_path(PROCESS)
    assert stats(service_url, "slime-contract") == {}  # a sample without a problem id: no post


def test_every_generated_group_is_posted_filtered_and_errored_apart(service_url):
    setup_run(service_url, "slime-rollouts")
    args = args_for(service_url, "slime-rollouts")
    source = PacedDataSource(args)
    generated, aborted = [], []
    for rollout_id in range(3):
        result = slime_stub.generate_rollout(args, rollout_id, source, grade)
        assert len(result["kept"]) == 2 and all(len(g) == 4 for g in result["kept"])
        generated += result["generated"]
        aborted += result["aborted"]
    dropped = len(generated) - 3 * 2
    assert dropped > 0  # the dynamic filter dropped groups: their k of n still reached paced
    assert any(s.status is Sample.Status.FAILED for g in generated for s in g)
    assert stats(service_url, "slime-rollouts") == expected(generated)
    assert source.sender.totals["errored"] == sum(
        s.status is Sample.Status.FAILED for g in generated for s in g
    )
    assert args.processed_group_count == len(result["generated"])
    assert aborted  # handed back, served again first: none is posted before it is generated
    assert len(source) == 12


def test_handed_back_groups_come_first_and_drawn_problems_are_leased(service_url):
    setup_run(service_url, "slime-lease")
    source = PacedDataSource(args_for(service_url, "slime-lease"))
    first = source.get_samples(3)
    source.add_samples(first[1:])
    again = source.get_samples(4)
    assert again[:2] == first[1:]  # the handed-back groups, as they were
    ids = [g[0].metadata["problem_id"] for g in first + again[2:]]
    assert len(set(ids)) == len(ids)  # leased until graded: no problem twice in flight
    assert [s.index for g in first for s in g] == list(range(12))
    with pytest.raises(TypeError):
        source.add_samples([Sample()])  # type: ignore[list-item]


def test_save_and_load_resume_the_draws_and_a_replayed_post_counts_once(service_url, tmp_path):
    setup_run(service_url, "slime-resume")
    args = args_for(
        service_url, "slime-resume", save=str(tmp_path), load=str(tmp_path), partial_rollout=False
    )
    source = PacedDataSource(args)
    for rollout_id in range(2):
        slime_stub.generate_rollout(args, rollout_id, source, grade)
        source.save(rollout_id)
    uninterrupted = source.get_samples(3)
    before = stats(service_url, "slime-resume")

    resumed = PacedDataSource(args)  # a new process
    resumed.load(1)
    assert resumed.get_samples(3) == uninterrupted  # pinned: the same draw, the same indices
    assert (tmp_path / "rollout" / "paced_data_source_1.json").exists()
    groups = slime_stub.generate_rollout(args, 2, source, grade)["generated"]
    resumed.observe(groups)  # the old process posted these already (same samples, same step)
    resumed.sender.flush()
    after = stats(service_url, "slime-resume")
    assert sum(n for n, _ in after.values()) - sum(n for n, _ in before.values()) == sum(
        s.status is Sample.Status.COMPLETED for g in groups for s in g
    )


def test_with_slimes_own_data_source_problem_ids_come_from_the_metadata(service_url):
    setup_run(service_url, "slime-feedback")
    args = args_for(service_url, "slime-feedback", reward_key="acc")
    groups = []
    for i, pid in enumerate(["sum-0-0", "sum-0-1"]):
        group = [
            Sample(group_index=i, index=4 * i + j, metadata={"problem_id": pid}) for j in range(4)
        ]
        for j, sample in enumerate(group):
            sample.status = Sample.Status.TRUNCATED if j == 3 else Sample.Status.COMPLETED
            sample.reward = {"acc": float(j % 2), "format": 1.0}
        groups.append(group)
    groups[1][0].status = Sample.Status.ABORTED

    class SlimeDataSource:  # slime's RolloutDataSourceWithBuffer, as far as this goes
        def get_samples(self, n):
            raise AssertionError("not called")

    slime_stub.load_function(PROCESS)(args, groups, SlimeDataSource().get_samples)
    assert stats(service_url, "slime-feedback") == {"sum-0-0": (4, 2), "sum-0-1": (3, 2)}

"""PacedTaskSampler on verifiers' own types (verifiers 0.4.0 installed: the `prime-rl` extra),
inside prime-rl's curriculum contract (tests/integrations/prime_rl_contract.py), against a live
service on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
import verifiers.v1 as vf

from tests.integrations.live_service import create_run, service_url, stats
from tests.integrations.prime_rl_contract import Curriculum, Sums, episode
from trainer_client.client import PacedClient
from trainer_client.integrations.prime_rl import PacedTaskSampler, tasks_to_problems

__all__ = ["service_url"]  # the fixture: every test runs on each backend


def setup_run(url: str, run: str, count: int = 16) -> list[vf.Task]:
    tasks = list(Sums(count))
    create_run(url, run, tasks_to_problems(tasks))
    return tasks


def mixed_group(task: vf.Task) -> list[vf.Episode]:
    """2 passed, 1 failed, and 3 that are not attempts: an env error, a timeout, a failed
    trace. A retried episode whose last attempt passed is graded (its old error is history)."""
    return [
        episode(task, 1.0),
        episode(task, 1.0, retried=True),
        episode(task, 0.0),
        episode(task, None, error="episode"),
        episode(task, None, timeout=True),
        episode(task, None, error="trace"),
    ]


def test_yields_the_envs_tasks_posts_graded_attempts_only_and_resumes(service_url):
    tasks = setup_run(service_url, "vf-tasks")
    curriculum = Curriculum(PacedTaskSampler(service_url, "vf-tasks", tasks, batch_size=4, seed=1))
    first = [curriculum.next_task() for _ in range(6)]
    assert all(any(task is t for t in tasks) for task in first)  # the env's own Task objects
    assert len({task.key for task in first}) == 6  # leased: no task twice in flight
    for task in first:
        group = mixed_group(task)
        assert curriculum.on_result(group)
        curriculum.on_result(group)  # the same group reported again counts once
    state = curriculum.state_dict()
    after = [curriculum.next_task().key for _ in range(5)]

    resumed = Curriculum(PacedTaskSampler(service_url, "vf-tasks", tasks, batch_size=4, seed=1))
    resumed.load_state_dict(state)
    assert [resumed.next_task().key for _ in range(5)] == after
    assert stats(service_url, "vf-tasks") == {task.data.id: (3, 2) for task in first}
    metrics = curriculum.metrics()
    assert metrics["sampler/paced/errored"] == 6 * 3  # kept apart, not in the attempts
    assert metrics["sampler/paced/attempts"] == 6 * 3
    assert metrics["sampler/paced/pass_rate"] == pytest.approx(2 / 3)
    assert metrics["sampler/paced/pending_posts"] == 0


def test_two_groups_of_one_task_with_equal_counts_are_two_posts(service_url):
    tasks = setup_run(service_url, "vf-twice", count=4)
    sampler = PacedTaskSampler(service_url, "vf-twice", tasks, batch_size=2)
    task = next(sampler)
    for _ in range(2):  # new episodes (new ids), same k of n
        sampler.observe([episode(task, 1.0), episode(task, 0.0)])
    assert stats(service_url, "vf-twice") == {task.data.id: (4, 2)}


def test_a_group_that_only_errored_is_stored_apart_from_the_pass_rate(service_url):
    tasks = setup_run(service_url, "vf-errored", count=4)
    sampler = PacedTaskSampler(service_url, "vf-errored", tasks, batch_size=2)
    task = next(sampler)
    tally = sampler.observe([episode(task, None, timeout=True), episode(task, None, error="trace")])
    assert (tally.attempts, tally.errored) == (0, 2)
    assert stats(service_url, "vf-errored") == {}  # no graded attempt
    with PacedClient(service_url) as paced:
        shown = paced.get_problem_stats("vf-errored", task.data.id)
    assert (shown.attempts, shown.errored, shown.pass_rate) == (0, 2, None)


def test_outcomes_are_at_the_episodes_dispatch_step(service_url):
    tasks = setup_run(service_url, "vf-step", count=4)
    sampler = PacedTaskSampler(service_url, "vf-step", tasks, batch_size=2)
    task = next(sampler)
    assert sampler.observe([episode(task, 1.0, step=7)]).step == 7  # orchestrator-stamped
    assert sampler.observe([episode(task, 1.0)]).step == 0  # else the draw it came from
    assert sampler.current_item is not None and sampler.current_item.problem_id == task.data.id


def test_groups_prime_rl_would_reject_are_rejected(service_url):
    tasks = setup_run(service_url, "vf-reject", count=4)
    sampler = PacedTaskSampler(service_url, "vf-reject", tasks, batch_size=2)
    one, other = next(sampler), next(sampler)
    with pytest.raises(ValueError, match="one task"):
        sampler.observe([episode(one, 1.0), episode(other, 1.0)])
    with pytest.raises(ValueError, match="one task"):
        sampler.observe([])
    stranger = list(Sums(5))[4].with_data(id="elsewhere", prompt="new")
    with pytest.raises(ValueError, match="never had"):
        sampler.observe([episode(stranger, 1.0)])
    with pytest.raises(ValueError, match="share"):
        PacedTaskSampler(service_url, "vf-reject", [tasks[0], tasks[0]])


class FailPosts(httpx.BaseTransport):
    """Answers 503 to the first `failures` outcome posts, as a service that is down."""

    def __init__(self, failures: int) -> None:
        self.inner, self.failures = httpx.HTTPTransport(), failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outcomes") and self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, json={"detail": "down"})
        return self.inner.handle_request(request)


def test_an_outage_keeps_posts_pending_and_the_checkpoint_carries_them(service_url):
    tasks = setup_run(service_url, "vf-outage", count=4)
    down = PacedClient(service_url, max_retries=0, transport=FailPosts(failures=10))
    sampler = PacedTaskSampler(down, "vf-outage", tasks, batch_size=2)
    task = next(sampler)
    sampler.observe([episode(task, 1.0), episode(task, 0.0)])
    assert sampler.metrics()["paced/pending_posts"] == 1 and stats(service_url, "vf-outage") == {}
    state = sampler.state_dict()

    resumed = PacedTaskSampler(service_url, "vf-outage", tasks, batch_size=2)
    resumed.load_state_dict(state)
    resumed.observe([episode(task, 1.0)])  # sends the pending post first, then this one
    resumed.sender.flush()
    assert stats(service_url, "vf-outage") == {task.data.id: (3, 2)}
    down.close()

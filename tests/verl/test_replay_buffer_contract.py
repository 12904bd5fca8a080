"""verl's v1 ReplayBuffer contract, run against verl's own class and against PacedReplayBuffer
(built the way verl builds a custom sampler: the six keyword arguments of
trainer_base._build_replay_buffer), on a real TransferQueue. What verl does, the subclass
does; on top of it, every terminal group's k of n reaches paced (and verl's class posts
nothing: the counts come from the subclass)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.verl.rollouts import (
    Group,
    Producer,
    Refiller,
    clear_partition,
    listed,
    new_run,
    put_groups,
    stats,
    uids_of,
)

pytestmark = pytest.mark.verl

POLL = 0.05


@pytest.fixture(params=["verl", "paced"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def run(paced_url, tmp_path) -> str:
    return new_run(paced_url, tmp_path, problems=8)[0]


@pytest.fixture
def make_buffer(kind, paced_url, run, transfer_queue):
    def make(
        *,
        trainer_mode: str = "sync",
        threshold: int | None = 8,
        strategy: str = "drop",
        refill_fn=None,
        dapo: bool = False,
    ):
        from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

        from trainer_client.integrations.verl import PacedReplayBuffer, PacedReplayBufferAsync

        asynchronous = trainer_mode != "sync"
        dapo_kwargs = {"filter_groups_metric": "acc", "train_batch_size": 2} if dapo else {}
        common = {
            "trainer_mode": trainer_mode,
            "trainer_config": {},
            "max_off_policy_threshold": threshold,
            "max_off_policy_strategy": strategy,
            "refill_fn": refill_fn,
        }
        if kind == "verl":
            cls = ReplayBufferAsync if asynchronous else ReplayBuffer
            extra = {"gen_batch_size": 1} if dapo else {}
            return cls(**common, sampler_kwargs={}, poll_interval=POLL, **dapo_kwargs, **extra)
        cls = PacedReplayBufferAsync if asynchronous else PacedReplayBuffer
        kwargs = {"url": paced_url, "run": run, "poll_interval": POLL, **dapo_kwargs}
        return cls(**common, sampler_kwargs=kwargs)

    return make


@pytest.fixture
def partition(partition_id, transfer_queue):
    yield partition_id
    clear_partition(partition_id)


def assert_posted(kind: str, url: str, run: str, groups: list[Group]) -> None:
    """paced holds each problem's attempts and successes summed over these groups (all of
    them: kept, evicted or surplus); verl's own class posted nothing."""
    expected: dict[int, list[int]] = {}
    for group in groups:
        tally = expected.setdefault(group.problem, [0, 0])
        tally[0] += group.attempts
        tally[1] += group.successes
    for problem, (attempts, successes) in expected.items():
        want = (attempts, successes) if kind == "paced" else (0, 0)
        assert stats(url, run, problem) == want, f"problem {problem}"


def test_metadata_is_classified_by_status(make_buffer, partition):
    pending = Group(0, [], "pending")
    running = Group(1, [1.0], "running")
    finished = Group(2, [1.0, 0.0])
    failure = Group(3, [1.0, None], "failure")
    put_groups(partition, [pending, running, finished, failure])
    buffer = make_buffer()
    buffer._sync_metadata_from_transfer_queue()
    assert buffer.pending_keys[partition] == {pending.uid}
    assert buffer.running_keys[partition] == {running.uid}
    assert buffer.finished_keys[partition] == {finished.uid}
    assert buffer.failure_keys[partition] == {failure.uid}
    expected = {*running.keys, *finished.keys, *failure.keys}
    assert set(buffer.partitions[partition]) == expected


def test_sample_takes_finished_and_failed_groups_and_consumes_their_prompts(
    kind, make_buffer, partition, paced_url, run
):
    finished = Group(1, [1.0, 0.0])
    failure = Group(2, [1.0, None], "failure")  # one session errored: no trajectory, no attempt
    running = Group(3, [1.0], "running")
    put_groups(partition, [finished, failure, running])
    batch, _ = make_buffer().sample(global_steps=0, partition_id=partition, batch_size=2)
    assert batch.partition_id == partition
    assert set(batch.keys) == {*finished.keys, *failure.keys}
    assert len(batch.tags) == len(batch.keys)
    remaining = listed(partition)
    assert finished.uid not in remaining and failure.uid not in remaining
    assert running.uid in remaining
    assert_posted(kind, paced_url, run, [finished, failure])
    assert stats(paced_url, run, 3) == (0, 0)  # a running group is not an outcome yet


def test_the_oldest_groups_are_sampled_first(kind, make_buffer, partition, paced_url, run):
    newest = Group(1, [1.0], global_steps=5)
    oldest = Group(2, [0.0], global_steps=1)
    middle = Group(3, [1.0], global_steps=2)
    put_groups(partition, [newest, oldest, middle])
    batch, _ = make_buffer().sample(global_steps=5, partition_id=partition, batch_size=2)
    assert uids_of(batch.keys) == {oldest.uid, middle.uid}
    assert newest.uid in listed(partition)
    # The group left behind is terminal: it is counted now, not when it is trained.
    assert_posted(kind, paced_url, run, [newest, oldest, middle])


def test_sample_blocks_until_enough_groups_are_terminal(kind, make_buffer, partition):
    put_groups(partition, [Group(1, [1.0])])
    buffer = make_buffer()
    result: dict = {}

    def consume():
        result["batch"], _ = buffer.sample(global_steps=0, partition_id=partition, batch_size=2)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(POLL * 6)
    assert consumer.is_alive(), "sample returned before two groups were terminal"
    producer = Producer(partition, [Group(2, [0.0])])
    producer.start()
    producer.finish()
    consumer.join(30)
    assert not consumer.is_alive()
    assert len(result["batch"].keys) == 2


def test_whole_grpo_groups_come_out_of_a_streaming_rollout(
    kind, make_buffer, partition, paced_url, run
):
    groups = [Group(i, [1.0, 0.0, 0.0, 1.0]) for i in range(1, 4)]
    producer = Producer(partition, groups, delay=0.05)
    producer.start()
    batch, _ = make_buffer().sample(global_steps=0, partition_id=partition, batch_size=3)
    producer.finish()
    assert set(batch.keys) == {k for g in groups for k in g.keys}
    per_uid: dict[str, int] = {}
    for key in batch.keys:
        per_uid[key.split("_")[0]] = per_uid.get(key.split("_")[0], 0) + 1
    assert set(per_uid.values()) == {4}
    assert_posted(kind, paced_url, run, groups)


def test_sync_dapo_evicts_flat_groups_refills_twice_and_paced_counts_them_first(
    kind, make_buffer, partition, paced_url, run
):
    keep = Group(1, [1.0, 0.0])
    flat = Group(2, [1.0, 1.0])  # zero variance: DAPO evicts it
    put_groups(partition, [keep, flat])
    refiller = Refiller(partition, rewards=[1.0, 0.0], problem=3)
    buffer = make_buffer(refill_fn=refiller, dapo=True)
    batch, metrics = buffer.sample(global_steps=0, partition_id=partition, batch_size=2)
    assert refiller.calls == [2]  # sync DAPO: k evictions earn 2k refill credits
    sampled = uids_of(batch.keys)
    assert len(sampled) == 2 and flat.uid not in sampled
    assert metrics["validation/filter_groups/evicted_samples"] == 1
    assert metrics["validation/filter_groups/discarded_surplus_samples"] == 1
    assert flat.uid not in listed(partition)
    # The evicted group and the discarded surplus are outcomes too.
    assert_posted(kind, paced_url, run, [keep, flat, *refiller.groups])
    if kind == "paced":
        assert metrics["validation/paced/recorded_groups"] == 4
        assert metrics["validation/paced/recorded_attempts"] == 8
        assert metrics["validation/paced/pending_posts"] == 0
        # The gate's view (trainer/gate.py GroupTally): 4 groups rolled out, 1 flat.
        assert metrics["validation/paced/gate/generated_groups"] == 4
        assert metrics["validation/paced/gate/zero_variance_groups"] == 1
        assert metrics["validation/paced/gate/zero_variance_share"] == 0.25


def test_async_drop_evicts_stale_groups_and_refills_one_for_one(
    kind, make_buffer, partition, paced_url, run
):
    stale = Group(1, [1.0, 0.0], global_steps=0)  # staleness 6 > 2 at step 5
    boundary = Group(2, [0.0, 0.0], global_steps=4)  # staleness 2: kept
    fresh = Group(3, [1.0, 1.0], global_steps=5)
    put_groups(partition, [stale, boundary, fresh])
    refiller = Refiller(partition, rewards=[0.0, 1.0], problem=4, global_steps=5)

    buffer = make_buffer(trainer_mode="colocate_async", threshold=2, refill_fn=refiller)
    batch, metrics = buffer.sample(global_steps=5, partition_id=partition, batch_size=3)
    sampled = uids_of(batch.keys)
    assert len(sampled) == 3 and stale.uid not in sampled
    assert {boundary.uid, fresh.uid} <= sampled
    assert refiller.calls == [1]
    assert metrics["validation/off_policy/evicted_samples"] == 1
    assert metrics["validation/off_policy/evicted_samples_staleness/mean"] == 6
    assert_posted(kind, paced_url, run, [stale, boundary, fresh, *refiller.groups])


def test_validation_rollouts_are_not_training_outcomes(kind, make_buffer, paced_url, run):
    groups = put_groups("val", [Group(5, [1.0, 0.0]), Group(6, [1.0])])
    try:
        batch, metrics = make_buffer().sample(global_steps=0, partition_id="val", batch_size=2)
    finally:
        clear_partition("val")
    assert uids_of(batch.keys) == {g.uid for g in groups}
    assert stats(paced_url, run, 5) == (0, 0) and stats(paced_url, run, 6) == (0, 0)
    assert not any("paced" in key for key in metrics)

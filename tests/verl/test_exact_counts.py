"""Exact counts: a group's k of n reaches paced once, whatever is lost or restarted on the way
(a lost answer, a service outage, more polls, a process that died after delivering), on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import httpx
import pytest

from tests.verl.conftest import PacedServer
from tests.verl.rollouts import Group, clear_partition, new_run, put_groups, stats
from trainer_client.client import PacedClient

pytestmark = pytest.mark.verl

POLL = 0.05


@pytest.fixture
def server(database_url, tmp_path):
    """A service of its own on each backend (the root conftest's database_url)."""
    with PacedServer(tmp_path, database_url) as running:
        yield running.url


@pytest.fixture
def partition(partition_id, transfer_queue):
    yield partition_id
    clear_partition(partition_id)


def paced_buffer(url: str, run: str, **settings):
    from trainer_client.integrations.verl import PacedReplayBuffer

    return PacedReplayBuffer(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=8,
        max_off_policy_strategy="drop",
        sampler_kwargs={"url": url, "run": run, "poll_interval": POLL, **settings},
        refill_fn=None,
    )


class LoseFirstAnswer(httpx.BaseTransport):
    """Delivers every request but loses the first answer (as a timeout after the commit)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.keys.append(request.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_lost_answer_is_retried_under_its_key_and_counts_once(server, tmp_path, partition):
    run, _ = new_run(server, tmp_path)
    buffer = paced_buffer(server, run)
    transport = LoseFirstAnswer()
    buffer.ledger.client = PacedClient(server, transport=transport)
    group = put_groups(partition, [Group(1, [1.0, 0.0, 1.0, 1.0])])[0]
    batch, metrics = buffer.sample(global_steps=3, partition_id=partition, batch_size=1)
    assert set(batch.keys) == set(group.keys)
    assert len(transport.keys) == 2 and transport.keys[0] == transport.keys[1] is not None
    assert stats(server, run, 1) == (4, 3)
    assert metrics["validation/paced/pending_posts"] == 0


def test_an_outage_keeps_posts_pending_on_disk_until_a_new_buffer_delivers_them(
    server, tmp_path, partition
):
    run, _ = new_run(server, tmp_path)
    state = tmp_path / "ledger.json"
    buffer = paced_buffer(server, run, state_path=str(state))
    # Nothing listens there: the post fails at once (no retries), training goes on.
    from service.spawn import free_port

    buffer.ledger.client = PacedClient(f"http://127.0.0.1:{free_port()}", max_retries=0)
    put_groups(partition, [Group(2, [0.0, 1.0]), Group(3, [1.0, 1.0])])
    batch, metrics = buffer.sample(global_steps=1, partition_id=partition, batch_size=2)
    assert len(batch.keys) == 4
    assert metrics["validation/paced/pending_posts"] == 1
    assert stats(server, run, 2) == (0, 0)
    saved = json.loads(state.read_text())
    assert len(saved["pending"]) == 1 and saved["pending"][0]["key"]
    # A new buffer (a restarted trainer) reads the ledger and delivers what was owed, once.
    paced_buffer(server, run, state_path=str(state))
    paced_buffer(server, run, state_path=str(state))
    assert stats(server, run, 2) == (2, 1) and stats(server, run, 3) == (2, 2)
    assert json.loads(state.read_text())["pending"] == []


def test_the_ledger_state_survives_a_save_and_load(server, tmp_path, partition):
    run, _ = new_run(server, tmp_path)
    buffer = paced_buffer(server, run)
    from service.spawn import free_port

    buffer.ledger.client = PacedClient(f"http://127.0.0.1:{free_port()}", max_retries=0)
    put_groups(partition, [Group(4, [1.0, 0.0, 0.0])])
    buffer.sample(global_steps=2, partition_id=partition, batch_size=1)
    state = buffer.state_dict()
    assert len(state["pending"]) == 1
    restored = paced_buffer(server, run)
    restored.load_state_dict(json.loads(json.dumps(state)))  # as a checkpoint would carry it
    restored.load_state_dict(json.loads(json.dumps(state)))  # loaded twice: still one count
    assert stats(server, run, 4) == (3, 1)


CHILD = textwrap.dedent(
    """
    import os, sys
    import httpx
    from trainer_client.client import PacedClient
    from trainer_client.integrations.verl.groups import GradedGroup
    from trainer_client.integrations.verl.ledger import OutcomeLedger

    url, run, state, partition, uid = sys.argv[1:6]

    class DieAfterDelivery(httpx.BaseTransport):
        def __init__(self):
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request):
            response = self.inner.handle_request(request)
            if request.url.path.endswith("/outcomes"):
                response.read()
                os._exit(17)  # delivered; the answer is never seen
            return response

    client = PacedClient(url, transport=DieAfterDelivery())
    ledger = OutcomeLedger(client, run, key_prefix=f"{run}/verl", state_path=state)
    group = GradedGroup(uid, f"{uid}@3", "5", (1.0, 0.0, 1.0), (True, False, True))
    ledger.record(partition, 3, [group])
    ledger.flush()
    """
)


def test_a_process_that_died_after_delivering_is_replayed_once_by_the_next(
    server, tmp_path, partition
):
    run, _ = new_run(server, tmp_path)
    state = tmp_path / "ledger.json"
    group = Group(5, [1.0, 0.0, 1.0], global_steps=3)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, server, run, str(state), partition, group.uid],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 17, child.stderr
    assert stats(server, run, 5) == (3, 2)  # the child's post arrived
    assert len(json.loads(state.read_text())["pending"]) == 1  # but it never knew
    # The group is still in TransferQueue (as an async trainer restores it from its checkpoint).
    put_groups(partition, [group])
    buffer = paced_buffer(server, run, state_path=str(state))  # resends: the service replays
    batch, _ = buffer.sample(global_steps=3, partition_id=partition, batch_size=1)
    assert set(batch.keys) == set(group.keys)
    assert stats(server, run, 5) == (3, 2)  # neither the resend nor the poll counted again


def test_groups_seen_by_many_polls_count_once_and_equal_groups_count_twice(
    paced_url, tmp_path, partition
):
    run, _ = new_run(paced_url, tmp_path)
    buffer = paced_buffer(paced_url, run)
    groups = put_groups(partition, [Group(6, [1.0, 0.0]) for _ in range(3)])
    for _ in groups:  # each sample polls the groups left over from the last one again
        buffer.sample(global_steps=0, partition_id=partition, batch_size=1)
    assert stats(paced_url, run, 6) == (6, 3)
    # Same problem, same k of n, same step, a later poll: another rollout, another count.
    put_groups(partition, [Group(6, [1.0, 0.0])])
    buffer.sample(global_steps=0, partition_id=partition, batch_size=1)
    assert stats(paced_url, run, 6) == (8, 4)


def test_bad_settings_and_unknown_problems_are_refused_by_name(paced_url, tmp_path, partition):
    from trainer_client.errors import ValidationFailed

    run, _ = new_run(paced_url, tmp_path, problems=2)
    with pytest.raises(ValueError, match="sucess_threshold"):
        paced_buffer(paced_url, run, sucess_threshold=0.5)
    with pytest.raises(ValueError, match="sampler_kwargs.run"):
        paced_buffer(paced_url, "")
    put_groups(partition, [Group(99, [1.0])])  # no such problem in the run's dataset
    with pytest.raises(ValidationFailed):
        paced_buffer(paced_url, run).sample(global_steps=0, partition_id=partition, batch_size=1)

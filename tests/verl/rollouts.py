"""What verl's v1 rollout leaves in TransferQueue, written by hand (the shapes of verl's own
tests/trainer/ppo/v1/test_replay_buffer_on_cpu.py and of agent_loop_tq.py), and verl data rows.

A group is one dispatch of a prompt (uid, no "_" in it): its trajectories go in first under
`{uid}_{session}_0` with the row's extra_info and the reward (rm_scores, reward at the last
token, and extra_fields.reward_extra_info.acc), then the prompt's status tag, as the real
rollout orders it. A session whose reward is None errored: it has no trajectory.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer_client.client import PacedClient
from trainer_client.integrations.verl.convert import upload_verl_parquet


def new_uid() -> str:
    return uuid.uuid4().hex


@dataclass
class Group:
    problem: int  # extra_info.index
    rewards: Sequence[float | None] = ()
    status: str = "finished"
    global_steps: int = 0
    uid: str = field(default_factory=new_uid)
    keys: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(r is not None for r in self.rewards)

    @property
    def successes(self) -> int:
        return sum(r is not None and r >= 1.0 for r in self.rewards)


def put_group(partition_id: str, group: Group) -> Group:
    import torch
    import transfer_queue as tq

    for session, reward in enumerate(group.rewards):
        if reward is None:
            continue
        key = f"{group.uid}_{session}_0"
        tq.kv_put(
            key=key,
            partition_id=partition_id,
            fields={
                "input_ids": torch.tensor([1, 2, 3]),
                "rm_scores": torch.tensor([0.0, 0.0, float(reward)]),
                "extra_info": {"index": group.problem, "split": "train"},
                "extra_fields": {"reward_extra_info": {"acc": float(reward)}},
            },
            tag={"is_prompt": False, "seq_len": 3, "global_steps": group.global_steps},
        )
        group.keys.append(key)
    set_status(partition_id, group, group.status)
    return group


def set_status(partition_id: str, group: Group, status: str) -> None:
    import transfer_queue as tq

    group.status = status
    tag = {"is_prompt": True, "status": status, "global_steps": group.global_steps}
    tq.kv_put(key=group.uid, partition_id=partition_id, tag=tag)


def put_groups(partition_id: str, groups: Sequence[Group]) -> list[Group]:
    return [put_group(partition_id, g) for g in groups]


def listed(partition_id: str) -> dict[str, dict]:
    import transfer_queue as tq

    return tq.kv_list(partition_id=partition_id).get(partition_id, {})


def clear_partition(partition_id: str) -> None:
    import transfer_queue as tq

    keys = list(listed(partition_id))
    if keys:
        tq.kv_clear(keys=keys, partition_id=partition_id)


def uids_of(keys: Sequence[str]) -> set[str]:
    return {key.split("_")[0] for key in keys}


class Producer(threading.Thread):
    """The rollout side in its own thread (sample() blocks until enough groups are terminal)."""

    def __init__(self, partition_id: str, groups: Sequence[Group], delay: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.partition_id, self.groups, self.delay = partition_id, groups, delay
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for group in self.groups:
                time.sleep(self.delay)
                put_group(self.partition_id, group)
        except BaseException as error:  # surfaced by finish()
            self.error = error

    def finish(self, timeout: float = 30.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "producer did not finish"
        if self.error is not None:
            raise self.error


class Refiller:
    """verl's refill_fn: on refill(k), k fresh terminal groups (rewards from `rewards`)."""

    def __init__(
        self, partition_id: str, rewards: Sequence[float], problem: int, global_steps: int = 0
    ) -> None:
        self.partition_id, self.rewards, self.problem = partition_id, rewards, problem
        self.global_steps = global_steps
        self.calls: list[int] = []
        self.groups: list[Group] = []

    def __call__(self, count: int) -> int:
        self.calls.append(count)
        for _ in range(count):
            group = Group(self.problem, self.rewards, global_steps=self.global_steps)
            self.groups.append(put_group(self.partition_id, group))
        return count


# ---- verl data rows and the paced run ---------------------------------------------------------


def verl_row(index: int, split: str = "train") -> dict:
    a, b = index % 7, index // 7
    return {
        "data_source": "openai/gsm8k",  # verl scores it with its GSM8K rule
        "prompt": [
            {"role": "system", "content": "Answer with the number only."},
            {"role": "user", "content": f"{a}+{b}="},
        ],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(a + b)},
        "extra_info": {"split": split, "index": index},
    }


def write_parquet(path: Path, rows: Sequence[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(list(rows)), str(path))
    return path


def new_run(url: str, directory: Path, problems: int = 8) -> tuple[str, Path]:
    """A dataset uploaded from a verl parquet file of `problems` rows, and a run on it."""
    name = f"verl-{uuid.uuid4().hex[:8]}"
    path = write_parquet(directory / f"{name}.parquet", [verl_row(i) for i in range(problems)])
    with PacedClient(url) as paced:
        upload_verl_parquet(paced, name, [path], run=name)
    return name, path


def stats(url: str, run: str, problem: int) -> tuple[float, float]:
    with PacedClient(url) as paced:
        s = paced.get_problem_stats(run, str(problem))
    return s.attempts, s.successes

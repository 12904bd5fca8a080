"""A terminal GRPO group as paced sees it: which problem, how many attempts, how many passed.

verl's v1 rollout stores each trajectory in TransferQueue under `{uid}_{session}_{index}`
(uid: one dispatch of a prompt; session: one of rollout.n attempts; index: an agent loop's
outputs, the last one carrying the reward). Each trajectory's fields hold the dataset row's
columns (`extra_info` among them: the problem id) and the reward: `rm_scores` (token-level,
summed to the score, verl's canonical reward) or `extra_fields.reward_extra_info[metric]`.

An attempt is a session: it passed when its reward is >= the threshold. A failed group's
missing sessions (the rollout errored) are not attempts: an error says nothing about the
problem's difficulty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainer_client.integrations.verl.convert import problem_id_of

CANONICAL_REWARD = "reward"  # verl's name for rm_scores (replay_buffer.FILTER_GROUPS_REWARD_METRIC)


@dataclass(frozen=True)
class GradedGroup:
    uid: str
    rollout_id: str  # uid@dispatch step: a re-issued prompt (same uid) is a new rollout
    problem_id: str
    rewards: tuple[float, ...]  # one per session, in session order
    passed: tuple[bool, ...]


def rollout_id(uid: str, global_steps: int | None) -> str:
    return f"{uid}@{global_steps}"


def _reward(value: Any, metric: str) -> float | None:
    if metric == CANONICAL_REWARD:
        return float(value.sum().item())
    fields = getattr(value, "data", value)
    info = fields.get("reward_extra_info", {}) if isinstance(fields, Mapping) else {}
    return float(info[metric]) if metric in info else None


def _final_outputs(keys: Iterable[str]) -> dict[str, dict[int, str]]:
    """uid -> session -> the key of its last output (agent loops put the reward there)."""
    chosen: dict[str, dict[int, tuple[int, str]]] = {}
    for key in keys:
        uid, session, index = key.split("_")[:3]
        sessions = chosen.setdefault(uid, {})
        if int(session) not in sessions or int(index) > sessions[int(session)][0]:
            sessions[int(session)] = (int(index), key)
    return {uid: {s: k for s, (_, k) in sorted(ss.items())} for uid, ss in chosen.items()}


def read_graded_groups(
    partition_id: str,
    trajectory_keys: Iterable[str],
    dispatch_steps: Mapping[str, int],
    *,
    metric: str = CANONICAL_REWARD,
    success_threshold: float = 1.0,
) -> list[GradedGroup]:
    """The groups of these trajectories, graded, with one TransferQueue read for all."""
    import transfer_queue as tq

    finals = _final_outputs(trajectory_keys)
    keys = [key for sessions in finals.values() for key in sessions.values()]
    if not keys:
        return []
    reward_field = "rm_scores" if metric == CANONICAL_REWARD else "extra_fields"
    data = tq.kv_batch_get(
        keys=keys, partition_id=partition_id, select_fields=["extra_info", reward_field]
    )
    missing = [field for field in ("extra_info", reward_field) if field not in data.keys()]
    if missing:
        raise RuntimeError(
            f"trajectories of partition {partition_id!r} carry no {missing}: paced needs each"
            " group's reward when the replay buffer sees it (a rule-based reward, or a reward"
            " model with its own resource pool) and the row's extra_info"
        )
    by_key = dict(zip(keys, zip(data["extra_info"], data[reward_field], strict=True), strict=True))
    groups = []
    for uid, sessions in finals.items():
        rewards = []
        for key in sessions.values():
            reward = _reward(by_key[key][1], metric)
            if reward is None:
                raise RuntimeError(f"trajectory {key} has no reward_extra_info[{metric!r}]")
            rewards.append(reward)
        first_key = next(iter(sessions.values()))
        extra_info = getattr(by_key[first_key][0], "data", by_key[first_key][0])
        groups.append(
            GradedGroup(
                uid=uid,
                rollout_id=rollout_id(uid, dispatch_steps.get(uid)),
                problem_id=problem_id_of(extra_info),
                rewards=tuple(rewards),
                passed=tuple(r >= success_threshold for r in rewards),
            )
        )
    return groups

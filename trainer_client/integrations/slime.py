"""paced inside slime, by two of its plug-in flags (no fork):

    --data-source-path trainer_client.integrations.slime.PacedDataSource
    --rollout-all-samples-process-path trainer_client.integrations.slime.post_all_groups
    --custom-config-path paced.yaml      # paced_url: ..., paced_run: ... (set on args)

- `PacedDataSource(args)` is slime's DataSource: `get_samples(n)` gives n groups of
  `args.n_samples_per_prompt` Samples of the problems of one pinned, leased paced draw (groups
  handed back by `add_samples`, the aborted partial ones, come first); `save(rollout_id)` /
  `load(rollout_id)` keep its position next to slime's own rollout state.
- `post_all_groups(args, all_groups, data_source)` is called by slime's rollout with every
  group it generated, those its dynamic filter dropped included: each group's k of n goes to
  paced there, so a filter that drops the all-pass and all-fail groups does not hide them.
  It works with slime's own data source too (problem ids from each sample's metadata).

A sample is one attempt; one whose status is ABORTED, FAILED or PENDING, or whose reward is
missing or not a number, errored: counted apart, not as a failure (attempts.py). A graded
sample passed when its reward (`reward[args.reward_key]` for dict rewards) is >= the
threshold. Settings come from args (`paced_*`, e.g. through slime's --custom-config-path
YAML), else from PACED_* environment variables. Nothing here imports slime: Sample is
imported when the first sample is made.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer_client._batch_format import BatchItem
from trainer_client.client import PacedClient
from trainer_client.integrations.attempts import GroupTally, OutcomeSender
from trainer_client.integrations.draws import SizedDraws

logger = logging.getLogger(__name__)
ERRORED_STATUSES = {"aborted", "failed", "pending"}  # Sample.Status values that are no attempt
STATE_VERSION = 1


def setting(args: Any, name: str, default: Any = None) -> Any:
    """args.paced_<name>, else $PACED_<NAME>, else the default."""
    value = getattr(args, f"paced_{name}", None)
    if value is None:
        value = os.environ.get(f"PACED_{name.upper()}")
    return default if value is None else value


def problem_id_of(sample: Any, key: str) -> str | None:
    value = (getattr(sample, "metadata", None) or {}).get(key)
    return None if value is None else str(value)


def sample_reward(sample: Any, reward_key: str | None) -> float | None:
    """The sample's reward, or None when it errored (no attempt to grade)."""
    status = getattr(sample.status, "value", sample.status)
    if str(status) in ERRORED_STATUSES or sample.reward is None:
        return None
    reward = sample.reward
    if isinstance(reward, dict):
        reward = reward.get(reward_key) if reward_key else None
    try:
        value = float(reward)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class PacedDataSource:
    def __init__(self, args: Any) -> None:
        url, run = setting(args, "url"), setting(args, "run")
        if not url or not run:
            raise ValueError(
                "paced needs paced_url and paced_run (in --custom-config-path's YAML) or"
                " PACED_URL and PACED_RUN in the environment"
            )
        self.args = args
        self.client = PacedClient(str(url))
        self.run = str(run)
        self.n_samples_per_prompt = int(getattr(args, "n_samples_per_prompt", 1) or 1)
        self.key_prefix = str(setting(args, "key_prefix", f"slime:{self.run}"))
        self.problem_id_key = str(setting(args, "problem_id_key", "problem_id"))
        self.prompt_format = str(setting(args, "prompt_format", "text"))  # or "messages" (JSON)
        self.success_threshold = float(setting(args, "success_threshold", 1.0))
        self.sender = OutcomeSender(self.client, self.run, key_prefix=f"{self.key_prefix}:all")
        # The draw settings are kept once, by SizedDraws (its options).
        self.draws = SizedDraws(
            self.client,
            self.run,
            key_prefix=self.key_prefix,
            seed=int(setting(args, "seed", getattr(args, "rollout_seed", 0) or 0)),
            mode=str(setting(args, "mode", "proportional")),
            lease_ttl_s=float(setting(args, "lease_ttl_s", 3600.0)),
        )
        self.buffer: list[list[Any]] = []
        self.next_draw = 0
        self.sample_index = 0
        self.sample_group_index = 0
        self.rollouts_observed = 0  # the step outcomes are posted at
        self.unidentified_groups = 0  # groups without a problem id: nothing to post

    # ---- serving -------------------------------------------------------------------------

    def get_samples(self, num_samples: int) -> list[list[Any]]:
        groups, self.buffer = self.buffer[:num_samples], self.buffer[num_samples:]
        missing = num_samples - len(groups)
        if missing > 0:
            draw = self.next_draw
            batch = self.draws.draw(missing, draw)
            self.next_draw += 1
            groups += [self._group(self.make_sample(item, draw)) for item in batch.items]
        return groups

    def make_sample(self, item: BatchItem, draw: int) -> Any:
        """One prompt's Sample from a paced item (override it for another prompt layout)."""
        from slime.utils.types import Sample

        prompt: Any = item.prompt
        if self.prompt_format == "messages":
            prompt = json.loads(item.prompt)
        metadata = {self.problem_id_key: item.problem_id, "paced_draw": draw}
        return Sample(prompt=prompt, label=item.answer, metadata=metadata)

    def _group(self, prompt_sample: Any) -> list[Any]:
        group = []
        for _ in range(self.n_samples_per_prompt):
            sample = copy.deepcopy(prompt_sample)
            sample.group_index, sample.index = self.sample_group_index, self.sample_index
            self.sample_index += 1
            group.append(sample)
        self.sample_group_index += 1
        return group

    def add_samples(self, samples: list[list[Any]]) -> None:
        """Groups handed back (slime's aborted partial rollouts): served again first."""
        if not samples:
            return
        if not all(isinstance(group, list) for group in samples):
            raise TypeError("add_samples takes a list of sample groups (lists)")
        self.buffer.extend(samples)

    def __len__(self) -> int:
        """The run's problems (slime sizes epochs by it)."""
        return self.client.get_dataset(self.client.get_run(self.run).dataset).problem_count

    # ---- outcomes ------------------------------------------------------------------------

    def observe(self, all_groups: Iterable[list[Any]]) -> list[GroupTally]:
        """Post every group's k of n (errored samples apart), once, at this rollout's step."""
        reward_key = getattr(self.args, "reward_key", None)
        tallies, identity, unidentified = [], [], 0
        for group in all_groups:
            pid = next((p for s in group if (p := problem_id_of(s, self.problem_id_key))), None)
            if pid is None:
                unidentified += 1
                continue
            rewards = [sample_reward(sample, reward_key) for sample in group]
            passed = tuple(r >= self.success_threshold for r in rewards if r is not None)
            errored = sum(r is None for r in rewards)
            tallies.append(GroupTally(pid, passed, errored, self.rollouts_observed))
            identity += [f"{pid}:{s.group_index}:{s.index}" for s in group]
        if unidentified:
            self.unidentified_groups += unidentified
            logger.warning("paced: %d groups without %r", unidentified, self.problem_id_key)
        if tallies:
            self.sender.send(tallies, identity)
        self.rollouts_observed += 1
        return tallies

    # ---- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "next_draw": self.next_draw,
            "sample_index": self.sample_index,
            "sample_group_index": self.sample_group_index,
            "rollouts_observed": self.rollouts_observed,
            "sender": self.sender.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"paced data source state version {state.get('version')!r}")
        self.next_draw, self.sample_index = state["next_draw"], state["sample_index"]
        self.sample_group_index = state["sample_group_index"]
        self.rollouts_observed = state["rollouts_observed"]
        self.sender.load_state_dict(state["sender"])

    def _state_path(self, root: str, rollout_id: Any) -> Path:
        return Path(root) / "rollout" / f"paced_data_source_{rollout_id}.json"

    def save(self, rollout_id: Any) -> None:
        """Next to slime's global_dataset_state_dict_{rollout_id}.pt, when args.save is set.
        (Buffered groups are not saved, as slime's own data source does not save them.)"""
        self.sender.flush()
        root = getattr(self.args, "save", None)
        if not root:
            return
        path = self._state_path(root, rollout_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.state_dict()))
        os.replace(temporary, path)

    def load(self, rollout_id: Any = None) -> None:
        root = getattr(self.args, "load", None)
        if not root or rollout_id is None:
            return
        path = self._state_path(root, rollout_id)
        if not path.exists():
            logger.info("paced: no data source state at %s", path)
            return
        self.load_state_dict(json.loads(path.read_text()))


_FEEDBACK_ONLY: dict[tuple[str, str], PacedDataSource] = {}


def post_all_groups(args: Any, all_groups: list[list[Any]], data_source: Any) -> None:
    """--rollout-all-samples-process-path: every group of the rollout, filtered ones included.
    slime passes its data source's bound get_samples; with slime's own data source, a paced
    poster for (paced_url, paced_run) is kept here."""
    source = getattr(data_source, "__self__", data_source)
    if not isinstance(source, PacedDataSource):
        key = (str(setting(args, "url")), str(setting(args, "run")))
        if key not in _FEEDBACK_ONLY:
            _FEEDBACK_ONLY[key] = PacedDataSource(args)
        source = _FEEDBACK_ONLY[key]
    source.observe(all_groups)
    # slime's path-loading contract check reads this after calling the function.
    args.processed_group_count = len(all_groups)

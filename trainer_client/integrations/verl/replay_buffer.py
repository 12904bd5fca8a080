"""verl's v1 ReplayBuffer with paced's bookkeeping: every terminal group's k of n is owed to
paced before anything may evict it.

verl builds a custom sampler from `trainer.v1.sampler.custom_sampler.{path,name}` with
`trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy,
sampler_kwargs, refill_fn` (trainer_base.PPOTrainer._build_replay_buffer). Each poll of
`sample` syncs TransferQueue's metadata and then asks `_terminal_eviction_reasons` which
terminal groups to evict (DAPO's zero-variance filter, off-policy staleness, failures). That
is the hook: the groups that became terminal since the last poll are graded, recorded and
posted first, then verl decides as it always does. Kept groups, DAPO-filtered groups, stale
groups and failed groups are all counted, once each.

What is rolled out (and so what is trained) is what paced drew: pair this buffer with
`PacedDataset` (data.custom_cls), and every refill verl asks for after an eviction pulls the
next items of paced's draws through the dataloader.
"""

from __future__ import annotations

from typing import Any

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

from trainer_client.client import PacedClient
from trainer_client.integrations.verl.groups import read_graded_groups, rollout_id
from trainer_client.integrations.verl.ledger import OutcomeLedger
from trainer_client.integrations.verl.settings import BufferSettings
from trainer_client.trainer.gate import GroupTally

VALIDATION = "val"  # verl's validation partition: its rollouts are not training outcomes


class _PacedPosting:
    """The paced half, mixed in front of verl's ReplayBuffer or ReplayBufferAsync."""

    def __init__(
        self,
        trainer_mode: str,
        trainer_config: Any,
        max_off_policy_threshold: int | None,
        max_off_policy_strategy: str,
        sampler_kwargs: Any,
        refill_fn: Any = None,
        **base_overrides: Any,
    ) -> None:
        self.paced = BufferSettings.from_config(sampler_kwargs)
        super().__init__(  # type: ignore[call-arg]
            trainer_mode=trainer_mode,
            trainer_config=trainer_config,
            max_off_policy_threshold=max_off_policy_threshold,
            max_off_policy_strategy=max_off_policy_strategy,
            sampler_kwargs=sampler_kwargs,
            refill_fn=refill_fn,
            **{**self.paced.base_kwargs(), **base_overrides},
        )
        self.ledger = OutcomeLedger(
            PacedClient(self.paced.url, token=self.paced.token),
            self.paced.run,
            key_prefix=self.paced.key_prefix or f"{self.paced.run}/verl",
            state_path=self.paced.state_path,
        )
        self._posted_since_sample = {"groups": 0, "attempts": 0}
        self.gate_tally = GroupTally()  # zero-variance share of the groups rolled out
        self.ledger.flush()  # what a previous process left pending

    # ---- the hook --------------------------------------------------------------------------

    def _terminal_eviction_reasons(self, global_steps: int, partition_id: str) -> Any:
        if partition_id != VALIDATION:
            self.record_terminal_groups(global_steps, partition_id)
        return super()._terminal_eviction_reasons(global_steps, partition_id)  # type: ignore[misc]

    def record_terminal_groups(self, global_steps: int, partition_id: str) -> None:
        """Grade, record and post the groups that became terminal since the last poll."""
        # verl's snapshot of this poll (_sync_metadata_from_transfer_queue), read as it is.
        dispatch_steps: dict[str, dict[str, int]] = self.prompt_global_steps  # type: ignore[attr-defined]
        self.ledger.keep_only({p: uids.keys() for p, uids in dispatch_steps.items()})
        steps = dispatch_steps[partition_id]
        terminal = self.finished_keys[partition_id] | self.failure_keys[partition_id]  # type: ignore[attr-defined]
        fresh = {
            uid
            for uid in terminal
            if not self.ledger.is_recorded(partition_id, rollout_id(uid, steps.get(uid)))
        }
        if fresh:
            trajectories = self.partitions[partition_id]  # type: ignore[attr-defined]
            groups = read_graded_groups(
                partition_id,
                [key for key in trajectories if key.split("_")[0] in fresh],
                steps,
                metric=self.paced.metric,
                success_threshold=self.paced.success_threshold,
            )
            self.ledger.record(partition_id, global_steps, groups)
            self._posted_since_sample["groups"] += len(groups)
            self._posted_since_sample["attempts"] += sum(len(g.passed) for g in groups)
            for group in groups:
                self.gate_tally.add(group.rewards)
        if self.ledger.pending:
            self.ledger.flush()

    # ---- sampling and state ----------------------------------------------------------------

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[Any, dict]:
        batch, metrics = super().sample(global_steps, partition_id, batch_size)  # type: ignore[misc]
        prefix = "training" if partition_id == "train" else "validation"  # verl's prefixes
        if partition_id != VALIDATION:
            metrics[f"{prefix}/paced/recorded_groups"] = self._posted_since_sample["groups"]
            metrics[f"{prefix}/paced/recorded_attempts"] = self._posted_since_sample["attempts"]
            metrics[f"{prefix}/paced/pending_posts"] = len(self.ledger.pending)
            metrics.update(self.gate_tally.metrics(f"{prefix}/paced/gate/"))
            self._posted_since_sample = {"groups": 0, "attempts": 0}
            self.gate_tally.reset()
        return batch, metrics

    def state_dict(self) -> dict[str, Any]:
        return self.ledger.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state)
        self.ledger.save()
        self.ledger.flush()


class PacedReplayBuffer(_PacedPosting, ReplayBuffer):
    """For trainer.v1.trainer_mode=sync (verl's ReplayBuffer semantics)."""


class PacedReplayBufferAsync(_PacedPosting, ReplayBufferAsync):
    """For the async trainer modes (verl's ReplayBufferAsync semantics: stale, DAPO-filtered
    and failed groups are evicted and refilled one for one)."""

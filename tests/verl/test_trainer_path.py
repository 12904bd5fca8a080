"""The deepest part of verl's v1 training path that runs on this CPU, with paced plugged in by
the overrides docs/integrations.md gives (read from the file, so the docs are what ran):

- verl's Hydra config (`ppo_trainer.yaml`) composed with those overrides;
- `get_trainer_cls("sync")(config)`: PPOTrainer.__init__ -> `_build_replay_buffer` loads
  PacedReplayBuffer from `trainer.v1.sampler.custom_sampler` and builds it with its six
  keyword arguments (refill_fn = the trainer's `_add_prompts_to_generate`);
- `_init_dataloader`: `create_rl_dataset` -> `get_dataset_class` loads PacedDataset from
  `data.custom_cls` for the train and the val files (RLHFDataset's parquet reading and
  prompt-length filter with a tokenizer's chat template), StatefulDataLoader with verl's
  sampler and collate_fn;
- per step, what `fit` does before the model: `prepare_step` (-> `_next_train_batch` ->
  the dataloader -> paced's draws; `_submit_batch_to_rollout` registers the prompts in
  TransferQueue), then `replay_buffer.sample` with verl's sync DAPO filter, whose refills go
  through the trainer's own `_add_prompts_to_generate`, then `tq.kv_clear` of the batch.

Generation is the part that does not run: it needs a model server (vLLM/SGLang workers).
`ScriptedRollout` stands in for AgentLoopManagerTQ: it writes each prompt's rollout.n
trajectories into TransferQueue as agent_loop_tq does, each answer graded by verl's own
reward function (`default_compute_score`, its GSM8K scorer).
"""

from __future__ import annotations

import random
import re
import shlex
from pathlib import Path

import pytest

from tests.verl.rollouts import new_run, verl_row, write_parquet
from trainer_client.client import PacedClient

pytestmark = pytest.mark.verl

ROOT = Path(__file__).resolve().parents[2]
DOC_URL, DOC_RUN = "http://127.0.0.1:8000", "gsm8k-run1"
N, BATCH, STEPS, PROBLEMS = 4, 4, 3, 12


def documented_overrides() -> list[str]:
    """The override lines of the verl section's command-line blocks, shell-split."""
    text = (ROOT / "docs" / "integrations.md").read_text()
    section = text[text.index("## verl 0.9 (v1 trainer)") :]
    section = section[: section.index("\n## ", 1)]
    overrides = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        if "verl.trainer.main_ppo" not in block and "algorithm.filter_groups" not in block:
            continue
        for line in block.splitlines():
            line = line.strip().rstrip("\\").strip()
            if "=" in line and not line.startswith(("<", "python")):
                overrides.extend(shlex.split(line))
    return overrides


def pass_probability(index: int) -> float:
    """Some problems never solved, some always (DAPO filters those groups), most half."""
    return {0: 0.0, 1: 1.0}.get(index % 4, 0.5)


class ScriptedRollout:
    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.rng = n, random.Random(seed)
        self.dispatched: list[str] = []  # problem ids, in dispatch order
        self.trajectories = 0

    def generate_sequences(self, batch) -> None:
        import torch
        import transfer_queue as tq
        from tensordict import NonTensorData, NonTensorStack
        from verl.utils.reward_score import default_compute_score

        for i in range(len(batch)):
            row = {}
            for key, value in batch.items():  # as AgentLoopWorkerTQ.generate_sequences
                if isinstance(value, torch.Tensor):
                    row[key] = value[i]
                elif isinstance(value, NonTensorStack):
                    row[key] = value[i].data
                elif isinstance(value, NonTensorData):
                    row[key] = value.data
            uid, truth = row["uid"], row["reward_model"]["ground_truth"]
            index = int(row["extra_info"]["index"])
            self.dispatched.append(str(index))
            tq.kv_put(key=uid, partition_id="train", tag={"status": "running"})
            for session in range(self.n):
                right = self.rng.random() < pass_probability(index)
                answer = f"#### {truth if right else int(truth) + 1}"
                score = default_compute_score(row["data_source"], answer, truth, row["extra_info"])
                fields = {
                    "prompts": torch.tensor([1, 2, 3]),
                    "responses": torch.tensor([4, 5]),
                    "input_ids": torch.tensor([1, 2, 3, 4, 5]),
                    "rm_scores": torch.tensor([0.0, float(score)]),
                    "extra_info": row["extra_info"],
                    "extra_fields": {"reward_extra_info": {"acc": float(score)}},
                }
                tag = {"status": "success", "prompt_len": 3, "response_len": 2, "seq_len": 5}
                tag["global_steps"] = row["global_steps"]
                tq.kv_put(key=f"{uid}_{session}_0", partition_id="train", fields=fields, tag=tag)
                self.trajectories += 1
            tq.kv_put(key=uid, partition_id="train", tag={"status": "finished"})


def tokenizer_with_chat_template():
    from trainer_client.tasks.toy import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    return tokenizer


def build_trainer(config):
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    # _init_tokenizer reads the model's files (a hub download here): set what it would.
    trainer.tokenizer, trainer.processor = tokenizer_with_chat_template(), None
    trainer._init_dataloader()
    return trainer


@pytest.fixture
def verl_config(paced_url, tmp_path, transfer_queue):
    import verl
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    run, train_file = new_run(paced_url, tmp_path, problems=PROBLEMS)
    val_file = write_parquet(tmp_path / "val.parquet", [verl_row(100 + i, "test") for i in (0, 1)])
    documented = [
        o.replace(DOC_URL, paced_url).replace(DOC_RUN, run) for o in documented_overrides()
    ]
    here = [
        f"data.train_files={train_file}",
        f"data.val_files={val_file}",
        f"data.train_batch_size={BATCH}",
        "data.filter_overlong_prompts_workers=1",
        f"actor_rollout_ref.rollout.n={N}",
        "actor_rollout_ref.model.path=/nonexistent/model",  # read by _init_tokenizer only
        f"trainer.default_local_dir={tmp_path / 'checkpoints'}",
        "trainer.logger=[console]",
        "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.05",
    ]
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose("ppo_trainer", overrides=documented + here)
    OmegaConf.resolve(config)  # as TaskRunnerV1.run does
    return config, run


def test_paced_runs_inside_verls_v1_trainer(verl_config, paced_url, capsys):
    import transfer_queue as tq

    from trainer_client.integrations.verl import PacedDataset, PacedReplayBuffer

    config, run = verl_config
    trainer = build_trainer(config)
    assert type(trainer.replay_buffer) is PacedReplayBuffer
    assert trainer.replay_buffer.refill_fn == trainer._add_prompts_to_generate
    assert trainer.replay_buffer.filter_groups_metric == "acc"
    assert isinstance(trainer.train_dataset, PacedDataset) and trainer.train_dataset.serves_draws
    assert isinstance(trainer.val_dataset, PacedDataset) and not trainer.val_dataset.serves_draws
    assert trainer.val_dataset[0]["extra_info"]["index"] == 100
    assert config.data.gen_batch_size == 1  # verl's rule for exact DAPO refills

    rollout = ScriptedRollout(N)
    trainer.agent_loop_manager = rollout
    trainer.global_steps = 1
    trained_per_step, saved, dispatched_at_save = [], None, 0
    for _ in range(STEPS):
        trainer.prepare_step()
        batch, metrics = trainer.replay_buffer.sample(
            global_steps=trainer.global_steps, partition_id="train", batch_size=BATCH
        )
        rewards = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"]
        )["extra_fields"]
        by_uid: dict[str, list[float]] = {}
        for key, fields in zip(batch.keys, rewards, strict=True):
            by_uid.setdefault(key.split("_")[0], []).append(fields["reward_extra_info"]["acc"])
        trained_per_step.append(by_uid)
        assert metrics["training/paced/pending_posts"] == 0
        tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)  # fit's step 7
        trainer.global_steps += 1
        if trainer.global_steps == STEPS:  # a checkpoint before the last step
            saved = trainer.train_dataloader.state_dict()
            dispatched_at_save = len(rollout.dispatched)

    # Each step trained BATCH whole groups, none of them with zero reward variance.
    for by_uid in trained_per_step:
        assert len(by_uid) == BATCH and all(len(r) == N for r in by_uid.values())
        assert all(len(set(r)) > 1 for r in by_uid.values())
    # DAPO evicted groups and refilled them through verl's own refill path.
    assert len(rollout.dispatched) > STEPS * BATCH
    # Every group rolled out was counted once, trained, evicted or discarded alike.
    with PacedClient(paced_url) as paced:
        attempts = {w.problem_id: w.attempts for w in paced.iter_weights(run)}
    expected = {str(i): N * rollout.dispatched.count(str(i)) for i in range(PROBLEMS)}
    assert attempts == expected and sum(attempts.values()) == rollout.trajectories
    # What was rolled out is what paced drew, in order (draws.PacedDraws.history).
    drawn = [pid for draw in trainer.train_dataset.draws.history for pid in draw]
    assert rollout.dispatched == drawn[: len(rollout.dispatched)]

    with capsys.disabled():
        print(
            f"\nverl v1 sync + DAPO: {STEPS} steps x {BATCH} groups trained, "
            f"{len(rollout.dispatched)} groups rolled out (n={N}), "
            f"{sum(attempts.values())} attempts posted to paced, "
            f"{len(trainer.train_dataset.draws.history)} paced draws"
        )

    # A restarted trainer resumed from the checkpoint's data.pt gets the same next prompts.
    assert saved is not None
    position = dispatched_at_save - 1  # the last item served; 12 items an epoch
    assert saved["dataset_state"] == {
        "epoch": position // PROBLEMS,
        "last_index": position % PROBLEMS,
    }
    again = build_trainer(config)
    again.train_dataloader.load_state_dict(saved)
    again.global_steps = STEPS
    resumed = again._next_train_batch(3)
    resumed_ids = [str(info["index"]) for info in resumed["extra_info"]]
    assert resumed_ids == rollout.dispatched[dispatched_at_save : dispatched_at_save + 3]

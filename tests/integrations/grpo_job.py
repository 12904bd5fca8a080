"""One tiny GRPO run with PACED, as the TRL tests (and torchrun, once per rank) run it.

    python tests/integrations/grpo_job.py URL RUN OUT.json [--steps N] [--seed S]

Writes what this process saw: its draws, and for every reward call the problem ids and
prompts it scored. Rank r writes OUT.json with ".rank{r}" before the suffix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from trainer_client.client import PacedClient
from trainer_client.integrations.draws import distributed_rank
from trainer_client.integrations.trl import PacedCurriculum
from trainer_client.tasks import toy

PER_DEVICE_BATCH = 8
NUM_GENERATIONS = 4


def setup(url: str, run: str, rows: list[dict]) -> None:
    with PacedClient(url) as paced:
        dataset = f"{run}-sums"
        paced.create_dataset(dataset)
        paced.upsert_problems(
            dataset,
            [{"id": r["problem_id"], "prompt": r["prompt"], "answer": r["answer"]} for r in rows],
        )
        paced.create_run(run, dataset, estimator={"kind": "posterior"})


class Recorder:
    """The inner reward: toy accuracy, remembering what each call scored."""

    __name__ = "accuracy"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, prompts, completions, problem_id, answer, trainer_state, **kwargs):
        self.calls.append(
            {"step": trainer_state.global_step, "problem_ids": list(problem_id), "prompts": prompts}
        )
        return toy.accuracy(completions, answer)


def grpo_config(workdir: str, steps: int, seed: int) -> GRPOConfig:
    """The tiny CPU run every TRL GRPO test trains (the gate's test too)."""
    return GRPOConfig(
        output_dir=workdir,
        max_steps=steps,
        per_device_train_batch_size=PER_DEVICE_BATCH,
        num_generations=NUM_GENERATIONS,
        max_completion_length=3,
        learning_rate=1e-3,
        scale_rewards="none",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=seed,
        disable_tqdm=True,
    )


def run_grpo(paced: PacedClient, run: str, steps: int, seed: int, workdir: str):
    rows = toy.problems(24)
    tokenizer = toy.build_tokenizer()
    args = grpo_config(workdir, steps, seed)
    recorder = Recorder()
    curriculum = PacedCurriculum(paced, run, seed=seed, weight_rewards=True)
    trainer = GRPOTrainer(
        model=toy.build_model(tokenizer, seed=seed),
        reward_funcs=curriculum.reward(recorder),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    curriculum.attach(trainer)
    trainer.train()
    return trainer, curriculum, recorder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:  # the test created nothing yet; rank 0 sets the run up before training
        setup(args.url, args.run, toy.problems(24))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        dist.barrier()
    with PacedClient(args.url) as paced:
        trainer, curriculum, recorder = run_grpo(
            paced, args.run, args.steps, args.seed, f"{args.out}.rank{rank}.d"
        )
    out = Path(args.out)
    record = {
        "rank": distributed_rank(),
        "world": world,
        "steps": trainer.state.global_step,
        "draws": curriculum.sampler.draws.history,
        "calls": recorder.calls,
    }
    out.with_name(f"{out.stem}.rank{rank}{out.suffix}").write_text(json.dumps(record))
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
        # Even so, 1 run in ~10 here aborted in torch's C++ teardown after everything above
        # had finished ("terminate called without an active exception", SIGABRT at exit):
        # leave without running static destructors once the results are on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()

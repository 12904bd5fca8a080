"""GRPO with PACED choosing the prompts (TRL GRPOTrainer, a tiny model built in-process).

    python examples/grpo_with_paced.py            # starts its own paced service on SQLite
    python examples/grpo_with_paced.py --url http://127.0.0.1:8000

Each step PACED draws the prompts (∝ p(1-p), topped up with unseen problems), the reward
wrapper posts every group's k-of-n back at the trainer's global step, and the next draw
uses the new pass rates. Runs in well under two minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import nullcontext

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from trainer_client.client import PacedClient
from trainer_client.integrations.trl import PacedCurriculum
from trainer_client.local.service import local_service
from trainer_client.tasks import toy


def upload(paced: PacedClient, run: str, rows: list[dict]) -> None:
    paced.create_dataset(f"{run}-sums", exist_ok=True)  # re-runnable
    paced.upsert_problems(
        f"{run}-sums",
        [{"id": r["problem_id"], "prompt": r["prompt"], "answer": r["answer"]} for r in rows],
    )
    # The posterior estimator gives unseen problems a prior weight, so they get drawn too.
    paced.create_run(run, f"{run}-sums", estimator={"kind": "posterior"}, exist_ok=True)


def train(url: str, run: str, steps: int, seed: int, workdir: str) -> dict:
    rows = toy.problems(24)
    with PacedClient(url) as paced:
        upload(paced, run, rows)
        tokenizer = toy.build_tokenizer()
        args = GRPOConfig(
            output_dir=workdir,
            max_steps=steps,
            per_device_train_batch_size=8,
            num_generations=4,  # 2 prompts x 4 completions per step
            max_completion_length=3,
            learning_rate=1e-3,
            scale_rewards="none",  # lets PACED's reward weight scale the advantage
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=seed,
            disable_tqdm=True,
        )
        # --- the PACED part: a curriculum, its reward wrapper, attach ---
        curriculum = PacedCurriculum(paced, run, seed=seed, weight_rewards=True)
        trainer = GRPOTrainer(
            model=toy.build_model(tokenizer, seed=seed),
            reward_funcs=curriculum.reward(toy.accuracy),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        curriculum.attach(trainer)
        trainer.train()
        # ---
        difficulty = paced.difficulty(run)
        reward = trainer.reward_funcs[0]
        return {
            "steps": trainer.state.global_step,
            "draws": curriculum.sampler.draws.history,  # one more than steps: the prefetch
            "attempts_posted": sum(o["attempts"] for call in reward.posted for o in call),
            "zones": difficulty.zones.model_dump(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running paced service (default: start one)")
    parser.add_argument("--run", default="grpo-demo")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        service = nullcontext(args.url) if args.url else local_service(f"{workdir}/paced")
        with service as url:
            print(
                json.dumps(train(url, args.run, args.steps, args.seed, f"{workdir}/out"), indent=1)
            )


if __name__ == "__main__":
    main()

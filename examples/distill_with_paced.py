"""On-policy distillation with PACED weights (TRL DistillationTrainer, tiny models built
in-process).

    python examples/distill_with_paced.py            # starts its own paced service on SQLite
    python examples/distill_with_paced.py --url http://127.0.0.1:8000

PACED draws the prompts uniformly and `PacedDistillationTrainer` multiplies each sample's
divergence by w(p)/mean(w); distillation produces no pass rates itself, so the estimation
callback rolls out problems from the rollout queue with the current student every step,
grades them and posts the outcomes. Runs in well under two minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import nullcontext

from datasets import Dataset
from trl import DistillationConfig

from trainer_client.client import PacedClient
from trainer_client.integrations.trl import PacedCurriculum, PacedDistillationTrainer
from trainer_client.local.service import local_service
from trainer_client.tasks import toy


def train(url: str, run: str, steps: int, seed: int, workdir: str) -> dict:
    rows = toy.problems(24)
    with PacedClient(url) as paced:
        paced.create_dataset(f"{run}-sums", exist_ok=True)  # re-runnable
        paced.upsert_problems(
            f"{run}-sums",
            [{"id": r["problem_id"], "prompt": r["prompt"], "answer": r["answer"]} for r in rows],
        )
        paced.create_run(run, f"{run}-sums", exist_ok=True)
        zones_before = paced.difficulty(run).zones.model_dump()
        tokenizer = toy.build_tokenizer()
        args = DistillationConfig(
            output_dir=workdir,
            max_steps=steps,
            per_device_train_batch_size=4,
            max_completion_length=3,
            learning_rate=1e-3,
            beta=1.0,  # reverse KL on the student's own samples
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=seed,
            disable_tqdm=True,
        )
        # --- the PACED part: uniform draws weighted in the loss, plus estimation ---
        curriculum = PacedCurriculum(paced, run, seed=seed, mode="uniform")
        estimation = curriculum.estimation_callback(toy.passes, k=4, limit=6, max_new_tokens=3)
        trainer = PacedDistillationTrainer(
            model=toy.build_model(tokenizer, seed=seed),
            teacher_model=toy.build_model(tokenizer, hidden=64, seed=seed + 1),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[estimation],
        )
        curriculum.attach(trainer)
        trainer.train()
        # ---
        return {
            "steps": trainer.state.global_step,
            "draws": curriculum.sampler.draws.history,
            "attempts_posted": sum(o["attempts"] for call in estimation.posted for o in call),
            "zones_before": zones_before,
            "zones_after": paced.difficulty(run).zones.model_dump(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running paced service (default: start one)")
    parser.add_argument("--run", default="distill-demo")
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

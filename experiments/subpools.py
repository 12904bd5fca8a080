"""Where does uniform's collapse on levels 1-2 come from? Short uniform runs on sub-pools.

    python experiments/subpools.py [--steps 75] [--seeds 0 1] [--pools level3 level4 ...]

Same teacher, initial student, eval splits and training config as `make experiment`
(experiments/arms.py FULL: batch 32, AdamW 3e-4, 10 warm-up steps, cosine to 10 %,
forward KL on the verified references, per-sequence reduction), uniform batches, but the
pool restricted to:

    full       the whole pool (levels 3 and 4): the control at the same schedule
    level3     the 4,000 level-3 problems (p = 0 ones included)
    level3-p0  the level-3 problems whose initial K = 8 pass rate is 0
    level4     the 4,000 level-4 problems (all p = 0)

The schedule is over `--steps` (shorter than the experiment's 250), so these are pilots.
After each run its final student answers the level-1 and level-2 eval problems greedily, and
the script counts responses written with more worked steps than the level has digits (a
2-digit problem answered in the 3- or 4-digit format, "5+4+0=09 7+4+0=11 0+0+1=02 =219").
Prints one table; records in docs/results/raw/subpools/<pool>-s<seed>.json and the summary
in docs/results/subpools.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiments.arms import FULL  # noqa: E402
from experiments.derived_task import ensure_task, subset_task  # noqa: E402
from experiments.runs import Planned, run_planned  # noqa: E402

POOLS = {
    "full": lambda p, rate: True,
    "level3": lambda p, rate: p.level == 3,
    "level3-p0": lambda p, rate: p.level == 3 and rate == 0.0,
    "level4": lambda p, rate: p.level == 4,
}
STEP = re.compile(r"\d\+\d\+\d=\d\d")


def step_counts(task_dir: Path, workdir: Path | None, levels: tuple[int, ...] = (1, 2)) -> dict:
    """Per level: share of greedy eval responses with more worked steps than digits, and an
    example. workdir None: the initial student; else the run's final checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainer_client.tasks.arithmetic.evaluation import generate_completions
    from trainer_client.tasks.arithmetic.problems import is_correct, read_jsonl
    from trainer_client.tasks.arithmetic.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(task_dir / "tokenizer")
    model = AutoModelForCausalLM.from_pretrained(task_dir / "student_init", local_files_only=True)
    if workdir is not None:
        payload = torch.load(workdir / "checkpoint.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(payload["model"])
    out = {}
    for level in levels:
        problems = [p for p in read_jsonl(task_dir / "eval.jsonl") if p.level == level]
        texts = [c[0] for c in generate_completions(model, tokenizer, problems)]
        extra = [
            (p, t) for p, t in zip(problems, texts, strict=True) if len(STEP.findall(t)) > level
        ]
        long = _greedy_long(model, tokenizer, [p.prompt for p in problems])
        out[str(level)] = {
            "n": len(problems),
            "more_steps_than_digits": len(extra) / len(problems),
            "wrong_among_those": sum(not is_correct(p, t) for p, t in extra) / max(1, len(extra)),
            "example": f"{extra[0][0].prompt} {extra[0][1]}" if extra else None,
            # The eval's budget is the reference length + 4 tokens, so a response in a longer
            # format is cut before its answer; with 64 tokens it is graded on what it writes.
            "accuracy_64_tokens": sum(is_correct(p, t) for p, t in zip(problems, long, strict=True))
            / len(problems),
            "example_64_tokens": f"{problems[0].prompt} {long[0]}",
        }
    return out


def _greedy_long(model, tokenizer, prompts: list[str], budget: int = 64) -> list[str]:
    import torch

    encoded = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            max_new_tokens=budget,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.batch_decode(
        output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-dir", default=str(REPO_ROOT / "work/task"))
    parser.add_argument("--work", default=str(REPO_ROOT / "work/subpools"))
    parser.add_argument("--out", default=str(REPO_ROOT / "docs/results"))
    parser.add_argument("--steps", type=int, default=75)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pools", nargs="+", default=list(POOLS), choices=list(POOLS))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    base, work, out = ensure_task(Path(args.task_dir)), Path(args.work), Path(args.out)
    raw = out / "raw" / "subpools"
    summary: dict = {
        "command": " ".join(["python", *sys.argv]),
        "steps": args.steps,
        "seeds": args.seeds,
        "pools": {},
        "initial_student_steps": step_counts(base, None),
    }
    for pool in args.pools:
        task_dir, size = subset_task(base, work / "tasks" / pool, POOLS[pool], {"subpool": pool})
        planned = [
            Planned(
                name=f"{pool}-s{seed}",
                arm="uniform",
                seed=seed,
                config=replace(
                    FULL.base,
                    run=f"{pool}-s{seed}",
                    seed=seed,
                    scheme="uniform",
                    loss="fkl",
                    steps=args.steps,
                    checkpoint_every=args.steps,
                ),
            )
            for seed in args.seeds
        ]
        records = run_planned(planned, task_dir, work / "runs" / pool, raw)
        for record in records:
            workdir = work / "runs" / pool / "runs" / record["config"]["run"]
            record["format_after"] = step_counts(task_dir, workdir)
            (raw / f"{record['name']}.json").write_text(json.dumps(record, indent=1))
        summary["pools"][pool] = {
            "problems": size,
            "runs": {
                r["name"]: {
                    "curve": r["curve"],
                    "format_after": r["format_after"],
                    "run_wall_s": r["timings"]["run_wall_s"],
                }
                for r in records
            },
        }
    summary["wall_s"] = time.perf_counter() - started
    (out / "subpools.json").write_text(json.dumps(summary, indent=1))
    print(table(summary))
    return 0


def table(summary: dict) -> str:
    lines = [
        "| pool (problems) | seed | step | L1 % | L2 % | L3 % | L4 % | held-out % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pool, entry in summary["pools"].items():
        for name, run in entry["runs"].items():
            for point in run["curve"]:
                levels = " | ".join(
                    f"{100 * point['per_level'][str(level)]:.1f}" for level in (1, 2, 3, 4)
                )
                lines.append(
                    f"| {pool} ({entry['problems']}) | {name.rsplit('-s', 1)[1]} | "
                    f"{point['step']} | {levels} | {100 * point['heldout']:.1f} |"
                )
    lines += [
        "",
        "| after training on | seed | L1 / L2 responses with more steps than digits | "
        "L1 / L2 accuracy, 64-token budget | L2 example (eval budget) | L2 example (64 tokens) |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("(initial student)", "-", summary["initial_student_steps"])]
    for pool, entry in summary["pools"].items():
        for name, run in entry["runs"].items():
            rows.append((pool, name.rsplit("-s", 1)[1], run["format_after"]))
    for pool, seed, fmt in rows:
        lines.append(
            f"| {pool} | {seed} | {_share(fmt, '1')} / {_share(fmt, '2')} | "
            f"{_pct(fmt, '1')} / {_pct(fmt, '2')} | `{fmt['2']['example'] or '-'}` | "
            f"`{fmt['2']['example_64_tokens']}` |"
        )
    return "\n".join(lines)


def _share(fmt: dict, level: str) -> str:
    return f"{100 * fmt[level]['more_steps_than_digits']:.1f} %"


def _pct(fmt: dict, level: str) -> str:
    return f"{100 * fmt[level]['accuracy_64_tokens']:.1f} %"


if __name__ == "__main__":
    sys.exit(main())

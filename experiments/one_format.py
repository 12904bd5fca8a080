"""The one-format experiment (issue 29, point 2): PACED vs uniform on a pool of one level.

    python experiments/one_format.py                      # 5 arms x seeds 0-3, 250 steps
    python experiments/one_format.py --seeds 0 1 --steps 100   # a reduced size (say so)
    python experiments/one_format.py --from-raw           # verdicts again from the records

Pre-registered in docs/results/one_format/preregistration.md (committed before any run).
In `make experiment` uniform's collapse on levels 1-2 comes from the level-4 half of the
pool (the 4-digit format overwrites the 2-digit one: experiments/subpools.py), and every
weighted arm drops level 4 because it is all p = 0, so that comparison is one of pools,
not of weightings. Here the pool is `--pool-size` fresh level-3 problems (the level the
student shares one format for and is half-way through: 45.5 % greedy), disjoint from the
task's warm-up, dev, eval and original pool; teacher references verified by the exact
checker; the initial student's K = 8 pass rates measured once (T = 1) and shared by every
arm and seed. Teacher, student, eval splits and training config are those of
`make experiment` (experiments/arms.py FULL); arms uniform, hard-filter, paced-paper,
paced-sampled, paced-reestimate. Verdicts: experiments/criteria.py (one_format_criteria).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiments.arms import FULL, arm_config  # noqa: E402
from experiments.derived_task import ensure_task, write_derived_task  # noqa: E402
from experiments.runs import Planned, run_planned  # noqa: E402

ARMS = ("uniform", "hard-filter", "paced-paper", "paced-sampled", "paced-reestimate")
LEVEL = 3
POOL_SEED = 2029  # the fresh pool's draw (the task's own splits use seeds 1-3 and 11)


def build_pool(base: Path, out: Path, size: int) -> dict:
    """Write the one-format task (cached by size and seed); returns its note."""
    note_path = out / "task.json"
    if note_path.exists():
        derived = json.loads(note_path.read_text()).get("derived", {})
        if derived.get("pool_size") == size and derived.get("pool_seed") == POOL_SEED:
            return derived
    from trainer_client.tasks.arithmetic.artifacts import load_model
    from trainer_client.tasks.arithmetic.build import splits_of, verified_references
    from trainer_client.tasks.arithmetic.config import TaskConfig
    from trainer_client.tasks.arithmetic.evaluation import sample_pass_rates, zone_shares
    from trainer_client.tasks.arithmetic.problems import make_problems
    from trainer_client.tasks.arithmetic.tokenizer import load_tokenizer
    from trainer_client.tasks.arithmetic.warmup import deterministic_torch

    started = time.perf_counter()
    config = TaskConfig.from_dict(json.loads((base / "task.json").read_text())["config"])
    splits = splits_of(config)
    taken = {p.id for split in (splits.train, splits.pool, splits.eval, splits.dev) for p in split}
    candidates = make_problems(POOL_SEED, size, [LEVEL], exclude=taken)
    tokenizer = load_tokenizer(base / "tokenizer")
    with deterministic_torch(1):
        teacher, student = load_model(base / "teacher"), load_model(base / "student_init")
        references, pool, dropped = verified_references(teacher, tokenizer, candidates, 64)
        rates = sample_pass_rates(student, tokenizer, pool, config.k, 0, config.temperature)
    by_id = {p.id: float(r) for p, r in zip(pool, rates, strict=True)}
    note = {
        "pool_size": size,
        "pool_seed": POOL_SEED,
        "level": LEVEL,
        "disjoint_from": ["train", "pool", "eval", "dev"],
        "references_dropped": dropped,
        "zones": zone_shares(rates),
        "mean_pass_rate": float(rates.mean()),
        "build_s": time.perf_counter() - started,
    }
    write_derived_task(base, out, pool, references, by_id, note)
    return note


def planned_runs(seeds: list[int], steps: int, arms: list[str], loss: str = "fkl") -> list[Planned]:
    """Every arm x seed; `loss` "rkl" trains every arm on-policy (point 3: reverse KL on the
    student's own samples, scored token by token by the teacher) instead of forward KL."""
    out = []
    for seed in seeds:  # seed-major: a stopped run still leaves whole seeds of every arm
        for arm in arms:
            config = replace(
                arm_config(FULL, arm, seed), steps=steps, checkpoint_every=steps, loss=loss
            )
            out.append(Planned(f"{arm}-s{seed}", arm, seed, config))
    return out


def report(records: list[dict], out: Path, meta: dict) -> str:
    from experiments.criteria import one_format_criteria, one_format_markdown
    from experiments.stats import arm_rows
    from experiments.table import results_table

    arms = [arm for arm in ARMS if any(r["arm"] == arm for r in records)]
    rows = arm_rows(records, reference_arm="uniform")
    table = results_table(rows, records[0]["before"], arms)
    criteria = one_format_criteria(records, level=LEVEL, teacher_accuracy=meta.get("teacher"))
    verdicts = one_format_markdown(criteria)
    curve = curve_table(records, arms)
    summary = {**meta, "arms": arms, "criteria": criteria}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=asdict))
    text = f"{table}\n\n{curve}\n\n{verdicts}\n"
    (out / "results.md").write_text(text)
    return text


def curve_table(records: list[dict], arms: list[str]) -> str:
    """Mean level-3 accuracy over seeds at each evaluated step."""
    steps = sorted({p["step"] for r in records for p in r["curve"]})
    lines = ["| arm | " + " | ".join(str(s) for s in steps) + " |", "|---" * (len(steps) + 1) + "|"]
    for arm in arms:
        runs = [r for r in records if r["arm"] == arm]
        cells = []
        for step in steps:
            values = [
                p["per_level"][str(LEVEL)] for r in runs for p in r["curve"] if p["step"] == step
            ]
            cells.append(f"{100 * sum(values) / len(values):.1f}" if values else "-")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-dir", default=str(REPO_ROOT / "work/task"))
    parser.add_argument("--pool-dir", default=str(REPO_ROOT / "work/task-one-format"))
    parser.add_argument("--loss", default="fkl", choices=["fkl", "rkl"])
    parser.add_argument("--work", default=None, help="default work/one-format[-rkl]")
    parser.add_argument("--out", default=None, help="default docs/results/one_format[_rkl]")
    parser.add_argument("--pool-size", type=int, default=8000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=FULL.base.steps)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--from-raw", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    suffix = "" if args.loss == "fkl" else "-rkl"
    args.work = args.work or str(REPO_ROOT / f"work/one-format{suffix}")
    args.out = args.out or str(REPO_ROOT / f"docs/results/one_format{suffix.replace('-', '_')}")
    base, out = Path(args.task_dir), Path(args.out)
    raw = out / "raw"
    if args.from_raw:
        records = [json.loads(p.read_text()) for p in sorted(raw.glob("*.json"))]
        meta = json.loads((out / "summary.json").read_text())
        meta.pop("criteria", None)
        print(report(records, out, meta))
        return 0
    note = build_pool(ensure_task(base), Path(args.pool_dir), args.pool_size)
    for stale in raw.glob("*.json"):  # records of an earlier run are not this run's
        stale.unlink()
    print(f"one-format pool: {json.dumps(note)}", flush=True)
    task = json.loads((base / "task.json").read_text())
    records = run_planned(
        planned_runs(args.seeds, args.steps, args.arms, args.loss),
        Path(args.pool_dir),
        Path(args.work),
        raw,
    )
    meta = {
        "command": " ".join(["python", *sys.argv]),
        "seeds": args.seeds,
        "steps": args.steps,
        "pool": note,
        "teacher": task["teacher"]["eval"]["accuracy"],
        "fingerprints": task["fingerprints"],
        "loss": args.loss,
        "base_config": asdict(
            planned_runs(args.seeds[:1], args.steps, ["uniform"], args.loss)[0].config
        ),
        "wall_s": time.perf_counter() - started,
    }
    print(report(records, out, meta))
    print(f"wall time {meta['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How well does each estimator track the student as it trains? (issue 26, point 5)

    python experiments/estimator_error.py              # 3 seeds x 250 steps
    python experiments/estimator_error.py --quick      # the tiny task, a few steps (the test)
    python experiments/estimator_error.py --from-raw   # the table and plot again from the records

One student per seed is trained as `paced-reestimate` is in `make experiment` (draws in
proportion to w(p), 256 rollout-queue problems re-rolled at K = 8 every 25 steps, its own run's
window "latest"). Its outcome posts also go, through experiments/estimator_tee.py, to one run
per estimator on the same service: windows `all`, `latest`, a half-life of 25 steps (the
refresh period; not tuned), and the predicted estimator, each at the full re-estimation budget;
and `latest` and `predicted` again at half of it (a fixed half of the pool's re-estimations:
the same problems for both). At steps 0, 50, ..., 250 a fixed random sample of pool problems
is rolled out K = 32 times with the current student (p_fresh: seeded, never posted, not
counted in any budget) and every estimator's pass rate of them is read from the service.

Reported per estimator and step (mean over seeds, with the range): mean |p_hat - p_fresh| over
the sample, per level, and the share of the estimator's draws (proportional to its weights)
that fall on problems whose p_fresh is 0 or 1 (0/32 or 32/32). The estimators share one
trajectory, which isolates the estimate from the student; what it cannot show is how a
different estimator's draws would have trained the student differently (only `latest`
drives the training). Writes docs/results/estimators/ (raw records, summary, table, plot).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiments.arms import FULL, QUICK, ExperimentSize, arm_config  # noqa: E402
from experiments.estimator_tee import Mirror, reading_rows  # noqa: E402

# Estimator arm -> (the run's estimator, the share of the re-estimation budget it receives).
ESTIMATORS: dict[str, tuple[dict[str, Any], float]] = {
    "all": ({"kind": "empirical", "window": "all"}, 1.0),
    "latest": ({"kind": "empirical", "window": "latest"}, 1.0),
    "half-life-25": ({"kind": "empirical", "window": "all", "half_life_steps": 25.0}, 1.0),
    "predicted": ({"kind": "predicted", "window": "latest"}, 1.0),
    "latest-half": ({"kind": "empirical", "window": "latest"}, 0.5),
    "predicted-half": ({"kind": "predicted", "window": "latest"}, 0.5),
}
DRIVER = "latest"  # the trainer's own run: its estimator chooses the training draws
OUT = REPO_ROOT / "docs/results/estimators"


def run_name(seed: int, arm: str) -> str:
    return f"est-s{seed}-{arm}"


def seed_config(size: ExperimentSize, seed: int, eval_every: int):
    """The driver's config: paced-reestimate's, evaluated (and probed) every `eval_every`."""
    base = arm_config(size, "paced-reestimate", seed)
    refresh = base.refresh_size if size is FULL else max(4, base.refresh_size // 32)
    return replace(base, run=run_name(seed, DRIVER), refresh_size=refresh, eval_every=eval_every)


def run_seed(job: dict[str, Any]) -> dict[str, Any]:
    """One seed in a worker process: train the driver, tee its posts, probe at every eval."""
    import torch

    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    from experiments.estimator_tee import FreshProbe, TeeClient
    from trainer_client.tasks.arithmetic.bundle import load_task_bundle
    from trainer_client.trainer.engines.transformers_engine import TransformersEngine
    from trainer_client.trainer.recipes.distill import token_budget, train
    from trainer_client.trainer.session import ensure_run
    from trainer_client.trainer.verifiers import make_verifier

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    seed, config = job["seed"], job["config"]
    bundle = load_task_bundle(job["task_dir"])
    references = bundle.references or {}
    pool_ids = sorted(p.id for p in bundle.pool)
    chosen = set(random.Random(seed).sample(pool_ids, min(job["sample"], len(pool_ids))))
    sample = [p for p in bundle.pool if p.id in chosen]
    mirrors = [Mirror(run_name(seed, a), ESTIMATORS[a][1]) for a in ESTIMATORS if a != DRIVER]
    runs = {arm: run_name(seed, arm) for arm in ESTIMATORS}
    steps = [0, *range(config.eval_every, config.steps, config.eval_every), config.steps]

    def budget(problem_id: str) -> int:
        return token_budget(references.get(problem_id), config.max_new_tokens)

    with TeeClient(job["url"], config.run, mirrors) as client:
        ensure_run(client, config, bundle.pool)  # the dataset (uploaded once) and the driver
        for arm, (estimator, _) in ESTIMATORS.items():  # the driver's too: the same settings
            client.create_run(runs[arm], config.dataset_name, estimator=estimator, exist_ok=True)
        probe = FreshProbe(
            bundle.evaluate,
            client,
            list(runs.values()),
            sample,
            lambda model: TransformersEngine(
                model, bundle.tokenizer, batch_size=512, add_special_tokens=True
            ),
            make_verifier(config.verifier),
            k=job["k_fresh"],
            seed=seed,
            budget=budget,
            eval_steps=steps,
        )
        client.on_difficulty = probe.take_pending
        bundle = replace(bundle, evaluate=probe)
        summary = train(config, client, bundle, job["workdir"], device="cpu", progress=False)
        spent = dict(client.spent)
    levels = {p.id: p.level for p in sample}
    rows = [row for point in probe.points for row in reading_rows(point, runs, levels)]
    return {
        "seed": seed,
        "runs": runs,
        "budgets": {arm: spent[run] for arm, run in runs.items()},
        "sample": len(sample),
        "k_fresh": job["k_fresh"],
        "points": probe.points,
        "rows": rows,
        "accuracy": {"before": summary["eval_before"], "after": summary["eval_after"]},
        "wall_s": time.perf_counter() - started,
    }


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per estimator and step: the mean and range over seeds of each figure."""
    table: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        for row in record["rows"]:
            table.setdefault((row["arm"], row["step"]), []).append(row)
    out = []
    for (arm, step), rows in table.items():
        errors = [r["mean_abs_error"] for r in rows]
        edge = [r["draws_at_edge"] for r in rows]
        out.append(
            {
                "arm": arm,
                "step": step,
                "seeds": len(rows),
                "mean_abs_error": sum(errors) / len(errors),
                "error_range": [min(errors), max(errors)],
                "draws_at_edge": sum(edge) / len(edge),
                "edge_range": [min(edge), max(edge)],
                "per_level": {
                    lv: sum(r["per_level"][lv] for r in rows) / len(rows)
                    for lv in rows[0]["per_level"]
                },
                "budget": sum(rec["budgets"][arm] for rec in records) / len(records),
            }
        )
    order = list(ESTIMATORS)
    return sorted(out, key=lambda r: (order.index(r["arm"]), r["step"]))


def markdown(summary: list[dict[str, Any]]) -> str:
    steps = sorted({r["step"] for r in summary})
    cell = {(r["arm"], r["step"]): r for r in summary}
    head = "| estimator | re-estimation rollouts | " + " | ".join(f"step {s}" for s in steps) + " |"
    rule = "|---|---|" + "---|" * len(steps)
    parts = ["mean |p_hat - p_fresh| over the sample (mean of seeds [min, max]):", "", head, rule]
    for arm in ESTIMATORS:
        first = cell[(arm, steps[0])]
        values = [cell[(arm, s)] for s in steps]
        shown = [
            f"{v['mean_abs_error']:.4f} [{v['error_range'][0]:.4f}, {v['error_range'][1]:.4f}]"
            for v in values
        ]
        parts.append(f"| {arm} | {first['budget']:,.0f} | " + " | ".join(shown) + " |")
    parts += ["", "share of draws on problems with p_fresh in {0, 1}:", "", head, rule]
    for arm in ESTIMATORS:
        first = cell[(arm, steps[0])]
        shown = [f"{cell[(arm, s)]['draws_at_edge']:.3f}" for s in steps]
        parts.append(f"| {arm} | {first['budget']:,.0f} | " + " | ".join(shown) + " |")
    levels = sorted(summary[0]["per_level"], key=int)
    parts += ["", "mean |p_hat - p_fresh| by level at the last step:", ""]
    parts.append("| estimator | " + " | ".join(f"L{lv}" for lv in levels) + " |")
    parts.append("|---|" + "---|" * len(levels))
    for arm in ESTIMATORS:
        last = cell[(arm, steps[-1])]
        parts.append(
            f"| {arm} | " + " | ".join(f"{last['per_level'][lv]:.4f}" for lv in levels) + " |"
        )
    return "\n".join(parts) + "\n"


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for arm in ESTIMATORS:
        rows = [r for r in summary if r["arm"] == arm]
        steps = [r["step"] for r in rows]
        style = "--" if arm.endswith("-half") else "-"
        axes[0].plot(steps, [r["mean_abs_error"] for r in rows], style, marker="o", label=arm)
        axes[1].plot(steps, [r["draws_at_edge"] for r in rows], style, marker="o", label=arm)
    axes[0].set(xlabel="step", ylabel="mean |p_hat - p_fresh|", title="estimation error")
    axes[1].set(xlabel="step", ylabel="share", title="draws on p_fresh in {0, 1}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny task, a few steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--sample", type=int, default=None, help="pool problems probed")
    parser.add_argument("--k-fresh", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--task-dir", default=None)
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--from-raw", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    size = QUICK if args.quick else FULL
    out = Path(args.out or (REPO_ROOT / "work/estimators-quick" if args.quick else OUT))
    raw = out / "raw"
    if args.from_raw:
        records = [json.loads(p.read_text()) for p in sorted(raw.glob("seed-*.json"))]
    else:
        records = collect(args, size, raw)
    summary = summarise(records)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table = markdown(summary)
    (out / "table.md").write_text(table)
    plot(summary, out / "estimators.png")
    print(table)
    return 0


def collect(args: argparse.Namespace, size: ExperimentSize, raw: Path) -> list[dict[str, Any]]:
    import shutil

    from trainer_client.local.service import local_service
    from trainer_client.tasks.arithmetic.build import prepare

    quick = size is QUICK
    task_dir = Path(
        args.task_dir or REPO_ROOT / ("work/task-compare-quick" if quick else "work/task")
    )
    prepare(task_dir, seed=0, config=size.task)
    work = Path(
        args.work or REPO_ROOT / ("work/estimators-quick-run" if quick else "work/estimators")
    )
    shutil.rmtree(work, ignore_errors=True)
    raw.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds or ([0] if quick else [0, 1, 2])
    eval_every = 6 if quick else 50
    sample = args.sample or (24 if quick else 1000)
    started = time.perf_counter()
    records = []
    with local_service(work / "service") as url:
        jobs = [
            {
                "seed": seed,
                "config": seed_config(size, seed, eval_every),
                "task_dir": str(task_dir),
                "workdir": str(work / f"seed-{seed}"),
                "url": url,
                "sample": sample,
                "k_fresh": args.k_fresh,
            }
            for seed in seeds
        ]
        context = get_context("spawn")  # fresh interpreters: torch threads set before work
        with ProcessPoolExecutor(max_workers=args.parallel, mp_context=context) as pool:
            for record in pool.map(run_seed, jobs):
                (raw / f"seed-{record['seed']}.json").write_text(json.dumps(record))
                print(f"seed {record['seed']}: {record['wall_s']:.0f} s", flush=True)
                records.append(record)
    print(f"wall time {time.perf_counter() - started:.0f} s", flush=True)
    return records


if __name__ == "__main__":
    sys.exit(main())

"""Does PACED weighting help? Every arm trained on the built-in task against one real service.

    python experiments/compare.py            # full: 7 arms x 4 seeds (make experiment)
    python experiments/compare.py --quick    # tiny task, 2 seeds, a few steps (CI smoke run)

1. Prepare the task (cached in --task-dir): teacher, warmed-up student, pool, eval splits.
2. Start one `paced serve` (SQLite) and upload the task's pool once as dataset "pool".
3. Train every arm x seed (its own run name) in worker processes, `--parallel` at a time with
   torch threads = cores / parallel each; every arm gets the same steps and batch size.
4. Write each run's record to OUT/raw/<arm>-s<seed>.json, then the table (OUT/table.md),
   the pre-registered criteria (OUT/criteria.md), the aggregate (OUT/summary.json) and plots
   (OUT/accuracy_vs_step.png, OUT/zones_vs_step.png).

Nothing is tuned per arm; see experiments/arms.py for the shared configuration. What this
comparison can show: the pool is levels 3 and 4, and every level-4 problem starts at p = 0,
so every weighted arm and the hard filter leave level 4 out while uniform and AKL train on
it. Uniform's collapse on levels 1-2 is the 4-digit format overwriting the 2-digit one
(experiments/subpools.py), not noise from p = 0 problems; differences between the arms
here mix "how problems are weighted" with "whether level 4 is trained". The one-format
pool (experiments/one_format.py) separates the two.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiments.arms import (
    ARMS,
    DATASET,
    FULL,
    HARD_FILTER_ARM,
    PRIMARY_ARM,
    QUICK,
    REFERENCE_ARM,
    arm_config,
)
from experiments.stats import arm_rows
from experiments.worker import RunSpec, run_one


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny task, few steps (CI)")
    parser.add_argument("--workdir", default=None, help="runs, service DB (default work/...)")
    parser.add_argument("--out", default=None, help="results (default docs/results)")
    parser.add_argument("--task-dir", default=None, help="task artefacts (cached)")
    parser.add_argument("--parallel", type=int, default=2, help="runs training at once")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override seeds")
    parser.add_argument("--steps", type=int, default=None, help="override steps (all arms)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        "--from-raw", action="store_true", help="only rebuild table/plots from OUT/raw/*.json"
    )
    return parser.parse_args(argv)


def _prepare_task(size, task_dir: Path) -> dict:
    from trainer_client.tasks.arithmetic.build import prepare

    started = time.perf_counter()
    artifacts = prepare(task_dir, seed=0, config=size.task)
    meta = artifacts.metadata
    print(
        f"task {task_dir} ({'cache' if artifacts.from_cache else 'built'}) in "
        f"{time.perf_counter() - started:.0f} s; student zones on the pool: {meta['zones']}",
        flush=True,
    )
    return meta


def _upload_pool(url: str, task_dir: Path) -> int:
    from trainer_client.client import PacedClient
    from trainer_client.tasks.arithmetic.problems import read_jsonl

    pool = read_jsonl(task_dir / "problems.jsonl")
    with PacedClient(url) as client:
        # The description every run's ensure_run gets-or-creates the dataset with: another
        # one would make the service answer 409 (get-or-create names differing settings).
        client.create_dataset(DATASET, "PACED training pool")
        client.upsert_problems(
            DATASET, [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in pool]
        )
    return len(pool)


def _specs(args, size, url: str, task_dir: Path, runs_dir: Path) -> list[RunSpec]:
    threads = max(1, (os.cpu_count() or 2) // args.parallel)
    seeds = tuple(args.seeds) if args.seeds else size.seeds
    specs = []
    for seed in seeds:  # seed-major: a stopped run still leaves whole seeds of every arm
        for arm in args.arms:
            config = arm_config(size, arm, seed)
            if args.steps is not None:
                config = replace(config, steps=args.steps, checkpoint_every=args.steps)
            specs.append(
                RunSpec(
                    arm=arm,
                    seed=seed,
                    config=config,
                    task_dir=str(task_dir),
                    workdir=str(runs_dir / config.run),
                    url=url,
                    threads=threads,
                )
            )
    return specs


def _run_all(specs: list[RunSpec], parallel: int, raw_dir: Path) -> list[dict]:
    records = []
    # spawn: fresh interpreters, so torch's thread pool is set before any work happens.
    with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, spec): spec for spec in specs}
        for future in as_completed(futures):
            record = future.result()
            records.append(record)
            path = raw_dir / f"{record['arm']}-s{record['seed']}.json"
            path.write_text(json.dumps(record, indent=1))
            print(
                f"[{len(records)}/{len(specs)}] {record['arm']} seed {record['seed']}: "
                f"overall {record['before']['accuracy']:.3f} -> {record['after']['accuracy']:.3f}"
                f", held-out skill {record['before']['heldout']:.3f} -> "
                f"{record['after']['heldout']:.3f} ({record['timings']['run_wall_s']:.0f} s)",
                flush=True,
            )
    order = {spec.config.run: i for i, spec in enumerate(specs)}
    return sorted(records, key=lambda r: order[r["config"]["run"]])


def _jsonable(rows: dict) -> dict:
    return json.loads(json.dumps(rows, default=lambda o: asdict(o)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from trainer_client.local.service import local_service

    # The task build's progress (teacher and student training take minutes), nothing chattier.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("trainer_client.tasks.arithmetic").setLevel(logging.INFO)

    started = time.perf_counter()
    size = QUICK if args.quick else FULL
    default_work = "work/experiment-quick" if args.quick else "work/experiment"
    work = Path(args.workdir or REPO_ROOT / default_work)
    out = Path(args.out or (work / "results" if args.quick else REPO_ROOT / "docs/results"))
    if args.from_raw:
        return rebuild_from_raw(out, args.arms)
    task_dir = Path(
        args.task_dir or REPO_ROOT / ("work/task-compare-quick" if args.quick else "work/task")
    )
    runs_dir, raw_dir = work / "runs", out / "raw"
    # Fresh runs and results each time: the service database below is new, so old
    # checkpoints would describe runs that no longer exist.
    shutil.rmtree(runs_dir, ignore_errors=True)
    shutil.rmtree(work / "service", ignore_errors=True)
    shutil.rmtree(raw_dir, ignore_errors=True)
    raw_dir.mkdir(parents=True)

    task_meta = _prepare_task(size, task_dir)
    prepared_s = time.perf_counter() - started
    with local_service(work / "service") as url:
        pool_size = _upload_pool(url, task_dir)
        specs = _specs(args, size, url, task_dir, runs_dir)
        print(
            f"{len(specs)} runs ({len(args.arms)} arms x {len(specs) // len(args.arms)} seeds), "
            f"{specs[0].config.steps} steps x batch {specs[0].config.batch_size}, pool "
            f"{pool_size}, {args.parallel} at a time x {specs[0].threads} torch threads; "
            f"service {url}",
            flush=True,
        )
        records = _run_all(specs, args.parallel, raw_dir)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "size": size.name,
        "parallel": args.parallel,
        "threads_per_run": specs[0].threads,
        "base_config": asdict(specs[0].config),
        "task": {
            k: task_meta.get(k)
            for k in (
                "config_hash",
                "config",
                "sizes",
                "references_dropped",
                "zones",
                "pool_pass_rate_by_level",
                "teacher",
                "student_init",
                "fingerprints",
                "timings_s",
            )
        },
        "wall_s": {"total": time.perf_counter() - started, "task_prepare": prepared_s},
    }
    write_results(records, args.arms, out, meta)
    print(
        f"\nwall time {meta['wall_s']['total']:.0f} s (task {prepared_s:.0f} s); results in {out}"
    )
    return 0


def write_results(records: list[dict], arms: list[str], out: Path, meta: dict) -> None:
    """Table, criteria, plots and summary.json from per-seed records; prints the table."""
    from experiments.criteria import criteria_markdown, evaluate_criteria
    from experiments.plots import accuracy_plot, zones_plot
    from experiments.table import results_table

    rows = arm_rows(records, reference_arm="uniform")
    task = meta.get("task", {})
    frontier_level = (task.get("config") or {}).get("warmup_band_level") or max(
        int(level) for level in records[0]["after"]["per_level"]
    )
    teacher = ((task.get("teacher") or {}).get("eval") or {}).get("accuracy")
    criteria = evaluate_criteria(
        records,
        primary=PRIMARY_ARM,
        reference=REFERENCE_ARM,
        hard_filter=HARD_FILTER_ARM,
        frontier_level=frontier_level,
        teacher_accuracy=teacher,
    )
    criteria_table = criteria_markdown(criteria, PRIMARY_ARM, frontier_level)
    table = results_table(rows, records[0]["before"], arms)
    accuracy_plot(records, arms, out / "accuracy_vs_step.png")
    zones_plot(records, arms, out / "zones_vs_step.png")
    summary = {
        **meta,
        "arms": [arm for arm in arms if arm in rows],
        "seeds": sorted({r["seed"] for r in records}),
        "runs": len(records),
        "eval_sizes": records[0].get("eval_sizes"),
        "rows": _jsonable(rows),
        "criteria": _jsonable(criteria),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(table + "\n")
    (out / "criteria.md").write_text(criteria_table + "\n")
    print()
    print(table)
    print()
    print(criteria_table)


def rebuild_from_raw(out: Path, arms: list[str]) -> int:
    """Recompute table, plots and summary from OUT/raw/*.json (no training)."""
    records = [json.loads(path.read_text()) for path in sorted((out / "raw").glob("*.json"))]
    if not records:
        print(f"no records in {out / 'raw'}", file=sys.stderr)
        return 1
    previous = out / "summary.json"
    meta = json.loads(previous.read_text()) if previous.exists() else {}
    for key in ("arms", "seeds", "runs", "eval_sizes", "rows"):
        meta.pop(key, None)
    records.sort(key=lambda r: (r["seed"], arms.index(r["arm"])))
    write_results(records, arms, out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())

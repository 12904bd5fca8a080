"""Seed a large run straight through SQL (the HTTP path is measured by bench/ingest.py)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, insert, select

from service.db import make_engine
from service.models import Dataset, Problem, ProblemStats, Run, RunHistory


def seed_run(
    database_url: str,
    n: int,
    *,
    seed: int = 0,
    chunk: int = 20_000,
    dataset: str = "bench",
    run: str = "run",
) -> None:
    """Dataset `bench` with n problems; run `run` whose pass rates are spread like a real
    student's: a third never solved, a third always, a third in between (Binomial(8, p)).
    Other names add another dataset and run to the same database."""
    rng = np.random.default_rng(seed)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        dataset_id = conn.execute(
            insert(Dataset).values(name=dataset).returning(Dataset.id)
        ).scalar_one()
        run_id = conn.execute(
            insert(Run)
            .values(
                name=run,
                dataset_id=dataset_id,
                kernel_alpha=1.0,
                kernel_beta=1.0,
                estimator_kind="empirical",
                prior_alpha=1.0,
                prior_beta=1.0,
                version=1,
                max_step=0,
            )
            .returning(Run.id)
        ).scalar_one()
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            conn.execute(
                insert(Problem),
                [
                    {
                        "dataset_id": dataset_id,
                        "external_id": f"p{i}",
                        "prompt": f"What is {i} + {i}?",
                        "answer": str(2 * i),
                    }
                    for i in range(start, stop)
                ],
            )
        first_id = conn.execute(
            select(func.min(Problem.id)).where(Problem.dataset_id == dataset_id)
        ).scalar_one()
        third = n // 3
        p_true = np.concatenate(
            [np.zeros(third), np.ones(third), rng.uniform(0.05, 0.95, n - 2 * third)]
        )
        rng.shuffle(p_true)
        k = rng.binomial(8, p_true)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            conn.execute(
                insert(ProblemStats),
                [
                    {
                        "run_id": run_id,
                        "problem_id": first_id + i,
                        "attempts": 8.0,
                        "successes": float(k[i]),
                        "total_attempts": 8,
                        "total_successes": int(k[i]),
                        "last_step": 0,
                    }
                    for i in range(start, stop)
                ],
            )
    engine.dispose()


def seed_more_runs(
    database_url: str,
    *,
    stats_runs: list[str],
    bare_runs: list[str],
    history_points: int,
    seed: int = 1,
    chunk: int = 50_000,
) -> None:
    """More runs on dataset `bench` (seed_run first), for the overview and compare benches.

    `stats_runs` get a problem_stats row for every problem (pass rates as in seed_run, a
    different draw per run); `bare_runs` get none. Every run, `run` included, gets
    `history_points` history snapshots (the per-run cap, 512 by default, is the worst case).
    """
    rng = np.random.default_rng(seed)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        dataset_id, n, first_id = conn.exec_driver_sql(
            "SELECT d.id, count(p.id), min(p.id) FROM datasets d JOIN problems p "
            "ON p.dataset_id = d.id WHERE d.name = 'bench' GROUP BY d.id"
        ).one()
        run_rows = [
            {
                "name": name,
                "dataset_id": dataset_id,
                "kernel_alpha": 1.0,
                "kernel_beta": 1.0,
                "estimator_kind": "empirical",
                "prior_alpha": 1.0,
                "prior_beta": 1.0,
                "version": 1,
                "max_step": history_points - 1,
            }
            for name in stats_runs + bare_runs
        ]
        conn.execute(insert(Run), run_rows)
        ids = dict(conn.exec_driver_sql("SELECT name, id FROM runs").all())
        for name in stats_runs:
            third = n // 3
            p_true = np.concatenate(
                [np.zeros(third), np.ones(third), rng.uniform(0.05, 0.95, n - 2 * third)]
            )
            rng.shuffle(p_true)
            k = rng.binomial(8, p_true).tolist()
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                conn.execute(
                    insert(ProblemStats),
                    [
                        {
                            "run_id": ids[name],
                            "problem_id": first_id + i,
                            "attempts": 8.0,
                            "successes": float(k[i]),
                            "total_attempts": 8,
                            "total_successes": k[i],
                            "last_step": history_points - 1,
                        }
                        for i in range(start, stop)
                    ],
                )
        steps = np.arange(history_points)
        for run_id in ids.values():
            frontier = np.linspace(0.05, 0.4, history_points) * n
            mastered = np.linspace(0.0, 0.3, history_points) * n
            conn.execute(
                insert(RunHistory),
                [
                    {
                        "run_id": run_id,
                        "step": int(s),
                        "unseen": int(n - f - m - 0.05 * n),
                        "intractable": int(0.05 * n),
                        "frontier": int(f),
                        "mastered": int(m),
                        "mean_pass_rate": 0.5,
                        "mean_weight": 0.1,
                        "effective_problems": float(f),
                    }
                    for s, f, m in zip(steps, frontier, mastered, strict=True)
                ],
            )
    engine.dispose()

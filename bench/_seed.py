"""Seed a large run straight through SQL (the HTTP path is measured by bench/ingest.py)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import insert

from service.db import make_engine
from service.models import Dataset, Problem, ProblemStats, Run


def seed_run(database_url: str, n: int, *, seed: int = 0, chunk: int = 20_000) -> None:
    """Dataset `bench` with n problems; run `run` whose pass rates are spread like a real
    student's: a third never solved, a third always, a third in between (Binomial(8, p))."""
    rng = np.random.default_rng(seed)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        dataset_id = conn.execute(
            insert(Dataset).values(name="bench").returning(Dataset.id)
        ).scalar_one()
        run_id = conn.execute(
            insert(Run)
            .values(
                name="run",
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
        first_id = conn.exec_driver_sql("SELECT min(id) FROM problems").scalar_one()
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

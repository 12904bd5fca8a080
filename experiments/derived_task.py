"""A task directory that shares a built task's models and eval splits but has its own pool.

The sub-pool runs (experiments/subpools.py) and the one-format experiment
(experiments/one_format.py) train the same teacher and initial student on a different
distillation pool. `load_task_bundle` reads only files, so a directory with symlinks to the
base task's tokenizer, teacher, student and eval/held-out splits plus its own
problems.jsonl, references.json and initial_pass_rates.json is a complete task.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer_client.tasks.arithmetic.problems import Problem, read_jsonl, write_jsonl

SHARED = ("tokenizer", "teacher", "student_init", "eval.jsonl", "dev.jsonl", "heldout_skill.jsonl")


def ensure_task(base: Path) -> Path:
    """Build the full task at `base` (as `make experiment` does), or reuse the cached one."""
    from trainer_client.tasks.arithmetic.build import prepare

    prepare(base, seed=0)
    return base


def base_pool(base: Path) -> tuple[list[Problem], dict[str, list[int]], dict[str, float]]:
    """The base task's pool, verified references and initial K=8 pass rates."""
    pool = read_jsonl(base / "problems.jsonl")
    references = json.loads((base / "references.json").read_text())
    rates = json.loads((base / "initial_pass_rates.json").read_text())
    return pool, references, rates


def write_derived_task(
    base: Path,
    out: Path,
    pool: Sequence[Problem],
    references: Mapping[str, list[int]],
    pass_rates: Mapping[str, float],
    note: dict[str, Any],
) -> Path:
    """Write `out` as a task with the given pool; models and eval splits link to `base`."""
    base, out = base.resolve(), Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in SHARED:
        if (base / name).exists():
            (out / name).symlink_to(base / name)
    write_jsonl(out / "problems.jsonl", pool)
    (out / "references.json").write_text(json.dumps({p.id: references[p.id] for p in pool}))
    (out / "initial_pass_rates.json").write_text(
        json.dumps({p.id: float(pass_rates[p.id]) for p in pool})
    )
    metadata = json.loads((base / "task.json").read_text())
    metadata["derived"] = {"base": str(base), "pool": len(pool), **note}
    (out / "task.json").write_text(json.dumps(metadata, indent=1))
    return out


def subset_task(
    base: Path, out: Path, keep: Callable[[Problem, float], bool], note: dict[str, Any]
) -> tuple[Path, int]:
    """The base task restricted to the pool problems `keep(problem, initial p)` accepts."""
    pool, references, rates = base_pool(base)
    kept = [p for p in pool if keep(p, rates[p.id])]
    return write_derived_task(base, out, kept, references, rates, note), len(kept)

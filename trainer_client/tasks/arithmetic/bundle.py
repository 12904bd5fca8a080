"""The built-in CPU task as a TaskBundle: prepare (cached) and load its artefacts.

`trainer_client.tasks.arithmetic.prepare` writes, under its workdir: tokenizer/, teacher/,
student_init/ (save_pretrained), problems.jsonl (the distillation pool), eval.jsonl
(held-out problems of the same family) and heldout_skill.jsonl (a skill the pool never
contains: forgetting).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import torch

from trainer_client.trainer.bundle import TaskBundle


def prepare_task(task_dir: str | Path, seed: int = 0, quick: bool = False) -> Any:
    """Train (or load from cache) the task's teacher and warmed-up student."""
    from trainer_client.tasks.arithmetic import prepare

    return prepare(Path(task_dir), seed=seed, quick=quick)


def _file_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_task_bundle(task_dir: str | Path, pool_limit: int | None = None) -> TaskBundle:
    """Load a prepared task: fresh copies of the models, so training never edits the cache.

    `pool_limit` keeps the first N pool problems (a shorter run, e.g. the demo); the pool
    file's order is the task's seeded draw, so the first N are a random subset.
    """
    import json

    from transformers import AutoModelForCausalLM

    from trainer_client.tasks.arithmetic.evaluation import evaluate
    from trainer_client.tasks.arithmetic.problems import read_jsonl
    from trainer_client.tasks.arithmetic.tokenizer import load_tokenizer

    task_dir = Path(task_dir)
    tokenizer = load_tokenizer(task_dir / "tokenizer")
    teacher = AutoModelForCausalLM.from_pretrained(task_dir / "teacher", local_files_only=True)
    student = AutoModelForCausalLM.from_pretrained(task_dir / "student_init", local_files_only=True)
    pool: list[Any] = read_jsonl(task_dir / "problems.jsonl")
    if pool_limit is not None:
        pool = _interleave_levels(pool)[:pool_limit]
    references_path = task_dir / "references.json"
    references = json.loads(references_path.read_text()) if references_path.exists() else None
    rates_path = task_dir / "initial_pass_rates.json"
    initial_pass_rates = json.loads(rates_path.read_text()) if rates_path.exists() else None
    eval_split = read_jsonl(task_dir / "eval.jsonl")
    heldout = read_jsonl(task_dir / "heldout_skill.jsonl")

    def evaluate_student(model: Any) -> dict[str, Any]:
        # The task's evaluation feeds CPU tensors to the model: evaluate a CPU fp32 copy
        # when training runs on a GPU (the task's models are tiny).
        if next(model.parameters()).device.type != "cpu":
            model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
        return {
            "eval": evaluate(model, tokenizer, eval_split),
            "heldout": evaluate(model, tokenizer, heldout),
        }

    return TaskBundle(
        teacher=teacher,
        student=student,
        tokenizer=tokenizer,
        pool=pool,
        evaluate=evaluate_student,
        teacher_key=_file_digest(task_dir / "teacher"),
        references=references,
        initial_pass_rates=initial_pass_rates,
    )


def _interleave_levels(pool: list[Any]) -> list[Any]:
    """Round-robin over levels (each level in file order), so a prefix has every level."""
    by_level: dict[int, list[Any]] = {}
    for problem in pool:
        by_level.setdefault(problem.level, []).append(problem)
    queues = [by_level[level] for level in sorted(by_level)]
    out: list[Any] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out

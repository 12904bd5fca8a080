"""The built-in CPU task as a TaskBundle: prepare (cached) and load its artefacts.

`trainer_client.task.prepare` writes, under its workdir: tokenizer/, teacher/, student_init/
(save_pretrained), problems.jsonl (the distillation pool), eval.jsonl (held-out problems of
the same family) and heldout_skill.jsonl (a skill the pool never contains: forgetting).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import torch

from trainer_client.trainer.loop import TaskBundle


def prepare_task(task_dir: str | Path, seed: int = 0, quick: bool = False) -> Any:
    """Train (or load from cache) the task's teacher and warmed-up student."""
    from trainer_client.task import prepare

    return prepare(Path(task_dir), seed=seed, quick=quick)


def _file_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def extra_pool_problems(task_dir: Path, per_level: int, levels: list[int]) -> list[Any]:
    """Fresh problems of the task's family, disjoint from its train, pool and eval splits.

    The task's pool (50 per level) is small enough that a few hundred distillation steps
    revisit each problem dozens of times and the student memorises it (eval accuracy drops
    while the pool's zones improve). The splits are rebuilt from task.json's config with the
    task's own make_splits; if they no longer reproduce problems.jsonl we refuse, rather than
    risk drawing training or evaluation problems into the pool.
    """
    import json

    from trainer_client.task.problems import make_problems, make_splits, read_jsonl

    config = json.loads((task_dir / "task.json").read_text())["config"]
    splits = make_splits(
        config["seed"],
        config["levels"],
        config["train_per_level"],
        config["pool_per_level"],
        config["eval_per_level"],
        config["heldout_train"],
        config["heldout_eval"],
        tuple(config["reverse_digits"]),
    )
    if [p.id for p in splits.pool] != [p.id for p in read_jsonl(task_dir / "problems.jsonl")]:
        raise RuntimeError("cannot rebuild the task's splits: not extending its pool")
    taken = {p.id for p in splits.train + splits.pool + splits.eval}
    return make_problems(config["seed"] * 7 + 5, per_level, levels, exclude=taken)


def load_task_bundle(
    task_dir: str | Path, extra_per_level: int = 0, extra_levels: list[int] | None = None
) -> TaskBundle:
    """Load a prepared task: fresh copies of the models, so training never edits the cache."""
    from transformers import AutoModelForCausalLM

    from trainer_client.task.evaluation import evaluate
    from trainer_client.task.problems import read_jsonl
    from trainer_client.task.tokenizer import load_tokenizer

    task_dir = Path(task_dir)
    tokenizer = load_tokenizer(task_dir / "tokenizer")
    teacher = AutoModelForCausalLM.from_pretrained(task_dir / "teacher", local_files_only=True)
    student = AutoModelForCausalLM.from_pretrained(task_dir / "student_init", local_files_only=True)
    pool: list[Any] = read_jsonl(task_dir / "problems.jsonl")
    if extra_per_level > 0:
        pool += extra_pool_problems(task_dir, extra_per_level, extra_levels or [])
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
        description=f"built-in arithmetic task at {task_dir}",
    )

"""The built task on disk: where each artefact lives, whether a cached build can be reused,
and loading its models.

A build is reused when task.json (written last) holds the same config hash and every
artefact it lists exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedModel

TASK_JSON = "task.json"
TEACHER_STAMP = "teacher_config_hash.txt"
REFERENCES_JSON = "references.json"  # problem id -> verified teacher response token ids


@dataclass(frozen=True)
class TaskArtifacts:
    workdir: Path
    tokenizer_dir: Path
    teacher_dir: Path
    student_init_dir: Path
    problems_path: Path  # distillation pool (only problems with a verified reference)
    references_path: Path  # the teacher's verified response per pool problem (token ids)
    eval_path: Path  # held-out problems of the family, every level
    heldout_skill_path: Path  # the skill the pool lacks, for measuring forgetting
    pass_rates_path: Path  # the student's initial sampled pass rate per pool problem
    task_json_path: Path
    config_hash: str
    metadata: dict  # the contents of task.json
    from_cache: bool


def artifacts_at(workdir: Path, metadata: dict, from_cache: bool) -> TaskArtifacts:
    return TaskArtifacts(
        workdir=workdir,
        tokenizer_dir=workdir / "tokenizer",
        teacher_dir=workdir / "teacher",
        student_init_dir=workdir / "student_init",
        problems_path=workdir / "problems.jsonl",
        references_path=workdir / REFERENCES_JSON,
        eval_path=workdir / "eval.jsonl",
        heldout_skill_path=workdir / "heldout_skill.jsonl",
        pass_rates_path=workdir / "initial_pass_rates.json",
        task_json_path=workdir / TASK_JSON,
        config_hash=metadata["config_hash"],
        metadata=metadata,
        from_cache=from_cache,
    )


def load_cached(workdir: Path, config_hash: str) -> TaskArtifacts | None:
    task_json = workdir / TASK_JSON
    if not task_json.exists():
        return None
    metadata = json.loads(task_json.read_text())
    if metadata.get("config_hash") != config_hash:
        return None
    artifacts = artifacts_at(workdir, metadata, from_cache=True)
    required = [
        artifacts.tokenizer_dir / "tokenizer.json",
        artifacts.teacher_dir / "config.json",
        artifacts.student_init_dir / "config.json",
        artifacts.problems_path,
        artifacts.references_path,
        artifacts.eval_path,
        artifacts.heldout_skill_path,
        artifacts.pass_rates_path,
    ]
    return artifacts if all(path.exists() for path in required) else None


def load_model(directory: str | Path) -> PreTrainedModel:
    """Load a saved teacher or student for inference, offline."""
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    return model.eval()

"""Build (or load from cache) everything the CPU distillation demo needs.

prepare() trains a teacher to solve every level, warms a smaller student up on the easy
levels and the held-out skill, measures the student's initial pass-rate zones on the
distillation pool, and writes all artefacts under one work directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, PreTrainedModel

from trainer_client.tasks.arithmetic.config import TaskConfig, full_config, quick_config
from trainer_client.tasks.arithmetic.evaluation import evaluate, sample_pass_rates, zone_shares
from trainer_client.tasks.arithmetic.models import build_model, count_parameters
from trainer_client.tasks.arithmetic.problems import (
    Problem,
    TaskSplits,
    is_correct,
    make_splits,
    reference_response,
    write_jsonl,
)
from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer, save_tokenizer
from trainer_client.tasks.arithmetic.training import train_supervised
from trainer_client.trainer.teacher_cache import model_fingerprint

logger = logging.getLogger(__name__)

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


def _artifacts(workdir: Path, metadata: dict, from_cache: bool) -> TaskArtifacts:
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


def _load_cached(workdir: Path, config_hash: str) -> TaskArtifacts | None:
    task_json = workdir / TASK_JSON
    if not task_json.exists():
        return None
    metadata = json.loads(task_json.read_text())
    if metadata.get("config_hash") != config_hash:
        return None
    artifacts = _artifacts(workdir, metadata, from_cache=True)
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


def _teacher_weights(config: TaskConfig, splits: TaskSplits) -> list[float]:
    """Every level equally often (level 1 has few distinct problems), plus the held-out skill."""
    per_level = Counter(p.level for p in splits.train)
    add_share = (1.0 - config.teacher_heldout_share) / config.levels
    weights = [add_share / per_level[p.level] for p in splits.train]
    weights += [config.teacher_heldout_share / len(splits.heldout_train)] * len(
        splits.heldout_train
    )
    return weights


def _student_weights(config: TaskConfig, splits: TaskSplits) -> list[float]:
    per_level = Counter(p.level for p in splits.train)
    level_weights = dict(enumerate(config.student_level_weights, start=1))
    total = sum(level_weights.values())
    add_share = 1.0 - config.student_heldout_share
    weights = [
        add_share * level_weights.get(p.level, 0.0) / total / per_level[p.level]
        for p in splits.train
    ]
    weights += [config.student_heldout_share / len(splits.heldout_train)] * len(
        splits.heldout_train
    )
    return weights


def splits_of(config: TaskConfig) -> TaskSplits:
    """The task's splits, rebuilt deterministically from its config."""
    return make_splits(
        config.seed,
        config.levels,
        config.train_per_level,
        config.pool_per_level,
        config.eval_per_level,
        config.heldout_train,
        config.heldout_eval,
        config.reverse_digits,
        pool_levels=config.pool_levels,
        dev_per_level=config.dev_per_level,
    )


@contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels for the build; restored afterwards."""
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])


def _train(
    name: str,
    model: PreTrainedModel,
    tokenizer,
    problems: Sequence[Problem],
    weights: Sequence[float],
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    stop: Callable[[int], bool] | None = None,
) -> list[float]:
    logger.info(
        "training %s (%d parameters, at most %d steps)", name, count_parameters(model), steps
    )
    bar = tqdm(total=steps, desc=f"train {name}", unit="step", leave=False, disable=None)
    every = max(1, steps // 10)

    def on_step(step: int, loss: float) -> bool:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % every == 0 or step == steps - 1:
            logger.info("%s step %d/%d loss %.4f", name, step + 1, steps, loss)
        return stop is not None and stop(step + 1)

    try:
        return train_supervised(
            model, tokenizer, problems, steps, batch, lr, seed, weights, on_step
        )
    finally:
        bar.close()


def _band_stop(config: TaskConfig, student, tokenizer, dev: Sequence[Problem], checks: list):
    """Stop the warm-up at the first check inside the band (see TaskConfig)."""
    level = config.warmup_band_level
    if level is None:
        return None
    problems = [p for p in dev if p.level == level]
    if not problems:
        raise ValueError(f"the dev split has no level-{level} problem for the warm-up band")
    low, high = config.warmup_band

    def stop(steps_done: int) -> bool:
        if steps_done < config.warmup_min_steps or steps_done % config.warmup_check_every:
            return False
        accuracy = evaluate(student, tokenizer, problems, config.eval_batch_size)["accuracy"]
        student.train()
        checks.append({"step": steps_done, "accuracy": accuracy})
        logger.info("warm-up step %d: dev level-%d accuracy %.3f", steps_done, level, accuracy)
        return low <= accuracy <= high

    return stop


def verified_references(
    teacher: PreTrainedModel, tokenizer, pool: Sequence[Problem], max_new_tokens: int
) -> tuple[dict[str, list[int]], list[Problem], dict[str, int]]:
    """The teacher's greedy response per pool problem, graded by the exact checker.

    Returns (references of the correct ones, the pool without the wrong ones, drop counts
    per level): distilling a wrong reference would teach the student the teacher's error.
    """
    from trainer_client.trainer.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(teacher, tokenizer, batch_size=256, add_special_tokens=True)
    references: dict[str, list[int]] = {}
    kept: list[Problem] = []
    dropped: Counter = Counter()
    ordered = sorted(pool, key=lambda p: len(reference_response(p)))
    bar = tqdm(
        total=len(pool), desc="teacher references", unit="problem", leave=False, disable=None
    )
    for start in range(0, len(ordered), 256):
        part = ordered[start : start + 256]
        budget = min(max_new_tokens, max(len(reference_response(p)) for p in part) + 8)
        groups = engine.generate(
            [p.prompt for p in part], 1, seed=0, max_new_tokens=budget, temperature=0.0
        )
        for problem, group in zip(part, groups, strict=True):
            if is_correct(problem, group[0].text):
                references[problem.id] = list(group[0].token_ids)
            else:
                dropped[str(problem.level)] += 1
        bar.update(len(part))
    bar.close()
    kept = [p for p in pool if p.id in references]  # the pool's own order
    return references, kept, dict(sorted(dropped.items()))


def prepare(
    workdir: str | Path, seed: int = 0, quick: bool = False, config: TaskConfig | None = None
) -> TaskArtifacts:
    """Build the task under `workdir`, or load it when a build with the same config exists."""
    config = config or (quick_config(seed) if quick else full_config(seed))
    workdir = Path(workdir)
    cached = _load_cached(workdir, config.hash())
    if cached is not None:
        logger.info("task artefacts in %s match config %s: reusing them", workdir, config.hash())
        return cached
    with deterministic_torch(config.threads):
        return _build(workdir, config, quick)


def _build(workdir: Path, config: TaskConfig, quick: bool) -> TaskArtifacts:
    config_hash = config.hash()
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    workdir.mkdir(parents=True, exist_ok=True)
    splits = splits_of(config)
    tokenizer = build_tokenizer()
    lap("data")

    train_with_heldout = splits.train + splits.heldout_train
    teacher_dir = workdir / "teacher"
    teacher_stamp = teacher_dir / TEACHER_STAMP
    if teacher_stamp.exists() and teacher_stamp.read_text() == config.teacher_hash():
        # Only student settings changed: the slow part, the teacher, is reused.
        logger.info("reusing the teacher in %s", teacher_dir)
        teacher = load_model(teacher_dir)
        teacher_losses: list[float] = []
    else:
        teacher = build_model(config.teacher, tokenizer, seed=config.seed)
        teacher_losses = _train(
            "teacher",
            teacher,
            tokenizer,
            train_with_heldout,
            _teacher_weights(config, splits),
            config.teacher_steps,
            config.teacher_batch,
            config.teacher_lr,
            config.seed,
        )
        teacher.save_pretrained(teacher_dir)
        teacher_stamp.write_text(config.teacher_hash())
    lap("teacher_train")
    teacher.eval()
    teacher_eval = evaluate(teacher, tokenizer, splits.eval, config.eval_batch_size)
    teacher_heldout = evaluate(teacher, tokenizer, splits.heldout_eval, config.eval_batch_size)
    logger.info("teacher accuracy per level: %s", teacher_eval["per_level"])
    references, pool, dropped = verified_references(teacher, tokenizer, splits.pool, 64)
    logger.info("pool: %d verified teacher references, dropped %s", len(pool), dropped)
    lap("teacher_eval_and_references")

    student = build_model(config.student, tokenizer, seed=config.seed + 1)
    band_checks: list[dict] = []
    student_losses = _train(
        "student",
        student,
        tokenizer,
        train_with_heldout,
        _student_weights(config, splits),
        config.student_steps,
        config.student_batch,
        config.student_lr,
        config.seed + 1,
        stop=_band_stop(config, student, tokenizer, splits.dev, band_checks),
    )
    lap("student_warmup")
    student.eval()
    student_eval = evaluate(student, tokenizer, splits.eval, config.eval_batch_size)
    student_heldout = evaluate(student, tokenizer, splits.heldout_eval, config.eval_batch_size)
    pass_rates = sample_pass_rates(
        student, tokenizer, pool, config.k, config.seed, config.temperature, progress=True
    )
    zones = zone_shares(pass_rates)
    logger.info("student initial zones on the pool: %s", zones)
    lap("student_eval")

    save_tokenizer(tokenizer, workdir / "tokenizer")
    student.save_pretrained(workdir / "student_init")
    write_jsonl(workdir / "problems.jsonl", pool)
    write_jsonl(workdir / "eval.jsonl", splits.eval)
    write_jsonl(workdir / "dev.jsonl", splits.dev)
    write_jsonl(workdir / "heldout_skill.jsonl", splits.heldout_eval)
    (workdir / REFERENCES_JSON).write_text(json.dumps(references))
    (workdir / "initial_pass_rates.json").write_text(
        json.dumps({p.id: float(r) for p, r in zip(pool, pass_rates, strict=True)})
    )
    lap("save")
    timings["total"] = round(time.perf_counter() - started, 2)

    pool_levels = sorted({p.level for p in pool})
    band = config.warmup_band
    metadata = {
        "config_hash": config_hash,
        "quick": quick,
        "config": config.to_dict(),
        "sizes": {
            "train": len(splits.train),
            "pool_candidates": len(splits.pool),
            "pool": len(pool),
            "eval": len(splits.eval),
            "dev": len(splits.dev),
            "heldout_train": len(splits.heldout_train),
            "heldout_eval": len(splits.heldout_eval),
        },
        "references_dropped": dropped,
        "parameters": {"teacher": count_parameters(teacher), "student": count_parameters(student)},
        "fingerprints": {
            "teacher": model_fingerprint(teacher),
            "student_init": model_fingerprint(student),
        },
        "teacher": {
            "eval": teacher_eval,
            "heldout_skill": teacher_heldout,
            "final_loss": teacher_losses[-1] if teacher_losses else None,  # None: reused
        },
        "student_init": {
            "eval": student_eval,
            "heldout_skill": student_heldout,
            "final_loss": student_losses[-1],
            "warmup_steps": len(student_losses),
            "band_checks": band_checks,
            "in_band": (
                None
                if config.warmup_band_level is None
                else bool(band_checks) and band[0] <= band_checks[-1]["accuracy"] <= band[1]
            ),
        },
        "zones": zones,
        "pool_pass_rate_by_level": {
            level: float(pass_rates[[p.level == level for p in pool]].mean())
            for level in pool_levels
        },
        "timings_s": timings,
    }
    # Written last: its presence with a matching hash is what marks the cache complete.
    (workdir / TASK_JSON).write_text(json.dumps(metadata, indent=2))
    logger.info("task prepared in %.1f s", timings["total"])
    return _artifacts(workdir, json.loads((workdir / TASK_JSON).read_text()), from_cache=False)


def load_model(directory: str | Path) -> PreTrainedModel:
    """Load a saved teacher or student for inference, offline."""
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    return model.eval()

"""Build (or load from cache) everything the CPU distillation demo needs.

prepare() trains a teacher to solve every level, warms a smaller student up on the easy
levels and the held-out skill, measures the student's initial pass-rate zones on the
distillation pool, and writes all artefacts under one work directory.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from trainer_client.tasks.arithmetic.artifacts import (
    REFERENCES_JSON,
    TASK_JSON,
    TEACHER_STAMP,
    TaskArtifacts,
    artifacts_at,
    load_cached,
    load_model,
)
from trainer_client.tasks.arithmetic.config import TaskConfig, full_config, quick_config
from trainer_client.tasks.arithmetic.evaluation import evaluate, sample_pass_rates, zone_shares
from trainer_client.tasks.arithmetic.problems import (
    Problem,
    TaskSplits,
    is_correct,
    make_splits,
    reference_response,
    write_jsonl,
)
from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer, save_tokenizer
from trainer_client.tasks.arithmetic.warmup import (
    band_stop,
    deterministic_torch,
    student_weights,
    teacher_weights,
    train_model,
)
from trainer_client.tasks.toy import count_parameters, tiny_qwen2
from trainer_client.trainer.teacher_cache import model_fingerprint

__all__ = ["TaskArtifacts", "load_model", "prepare", "quick_config", "verified_references"]

logger = logging.getLogger(__name__)


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


def verified_references(
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    pool: Sequence[Problem],
    max_new_tokens: int,
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


# The full task (seed 0) as built, shipped in a clone so that `make demo` starts in minutes
# instead of training a teacher for ~7. The build is deterministic (tests/tasks check the
# config hash it carries against full_config(0)); `make task-prebuilt` rebuilds it after a
# change to the task. Not in the wheel: an installed package builds on first use.
PREBUILT = Path(__file__).parent / "prebuilt"


def prepare(
    workdir: str | Path,
    seed: int = 0,
    quick: bool = False,
    config: TaskConfig | None = None,
    use_prebuilt: bool = True,
) -> TaskArtifacts:
    """Build the task under `workdir`, or load it when a build with the same config exists
    there (or, with use_prebuilt, ships in PREBUILT: copied to `workdir`, then loaded)."""
    config = config or (quick_config(seed) if quick else full_config(seed))
    workdir = Path(workdir)
    cached = load_cached(workdir, config.hash())
    if cached is not None:
        logger.info("task artefacts in %s match config %s: reusing them", workdir, config.hash())
        return cached
    if use_prebuilt and load_cached(PREBUILT, config.hash()) is not None:
        logger.info("copying the shipped task (config %s) to %s", config.hash(), workdir)
        shutil.copytree(PREBUILT, workdir, dirs_exist_ok=True)
        shipped = load_cached(workdir, config.hash())
        assert shipped is not None
        return shipped
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
        teacher = tiny_qwen2(config.teacher, tokenizer, seed=config.seed)
        teacher_losses = train_model(
            "teacher",
            teacher,
            tokenizer,
            train_with_heldout,
            teacher_weights(config, splits),
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

    student = tiny_qwen2(config.student, tokenizer, seed=config.seed + 1)
    band_checks: list[dict] = []
    student_losses = train_model(
        "student",
        student,
        tokenizer,
        train_with_heldout,
        student_weights(config, splits),
        config.student_steps,
        config.student_batch,
        config.student_lr,
        config.seed + 1,
        stop=band_stop(config, student, tokenizer, splits.dev, band_checks),
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
    return artifacts_at(workdir, json.loads((workdir / TASK_JSON).read_text()), from_cache=False)

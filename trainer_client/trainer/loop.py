"""The PACED training loop: estimate pass rates, draw weighted batches, distill, refresh.

    summary = train(config, client, bundle, workdir)

1. Make sure the dataset (the task's pool) and the run exist on the service.
2. Teacher reference responses for the pool: greedy, generated once, cached on disk.
3. Estimate: the rollout queue's problems, K student samples each, graded, posted (step 0).
4. Each step: a batch from the service (seeded by (seed, step)), teacher forward on the
   cached references (forward KL) or on fresh student samples (reverse KL), weighted loss,
   AdamW step, one JSON line of metrics. Every R steps part of the queue is re-rolled with
   the current student so pass rates follow it.
5. Checkpoints every N steps and at the end; `resume=True` continues at the saved step.
6. At the end: a full-pool estimate and evaluation, and a summary of before -> after.

The loop knows nothing about the task beyond `TaskBundle`; the built-in CPU task provides
one through `trainer_client.trainer.task_bundle`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from trainer_client.engines.transformers_engine import TransformersEngine
from trainer_client.errors import NotFound
from trainer_client.losses import TwoStageSchedule
from trainer_client.trainer.batches import BatchDrawer, DrawnBatch
from trainer_client.trainer.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from trainer_client.trainer.config import TrainConfig
from trainer_client.trainer.distill import build_sequences, distill_loss
from trainer_client.trainer.estimate import estimate, outcomes_key
from trainer_client.trainer.metrics import ClientTimer, MetricsLog, zone_counts
from trainer_client.trainer.seeds import derive_seed
from trainer_client.trainer.teacher_cache import model_fingerprint, teacher_references
from trainer_client.verifiers import make_verifier

# Generation room beyond the teacher's reference length, so a rambling student is graded
# on what it wrote rather than cut off exactly at the reference's end.
EXTRA_TOKENS = 4


@dataclass
class TaskBundle:
    """What the loop needs from a task. `pool` items have .id, .prompt, .answer."""

    teacher: torch.nn.Module
    student: torch.nn.Module
    tokenizer: Any
    pool: Sequence[Any]
    # student -> {"eval": report, "heldout": report}; reports as task.evaluate returns them.
    evaluate: Callable[[torch.nn.Module], dict[str, Any]] | None = None
    teacher_key: str | None = None  # cache key of the teacher; default: hash of its weights
    description: str = ""
    # The task's own K-rollout pass rate per pool problem for the initial student (what
    # TrainConfig.reuse_task_estimate posts instead of rolling out again).
    initial_pass_rates: dict[str, float] | None = None
    # Teacher responses (token ids) per pool problem, when the task already made them;
    # otherwise the loop generates them greedily (cached). Either way they are verified.
    references: dict[str, list[int]] | None = None


@dataclass
class _Counters:
    rollouts: int = 0
    teacher_forwards: int = 0
    conflicts: int = 0
    fallbacks: int = 0
    refreshes: int = 0
    estimate_s: float = 0.0
    train_s: float = 0.0
    step_s: float = 0.0
    client_s: float = 0.0
    steps_run: int = 0
    wall_s: float = 0.0  # across resumed sessions
    extra: dict[str, Any] = field(default_factory=dict)


def lr_scale(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to min_lr_ratio at the last step."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    span = max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def select_device(preferred: str | None = None) -> torch.device:
    """CUDA when available, else CPU using every core (at least 2 threads)."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(max(2, os.cpu_count() or 2))
    return torch.device("cpu")


def ensure_run(client: Any, timer: ClientTimer, config: TrainConfig, pool: Sequence[Any]) -> None:
    """Create the dataset (uploading the pool) and the run unless they exist."""
    dataset = config.dataset_name
    try:
        found = timer.call(client.get_dataset, dataset)
        needs_upload = found.problem_count != len(pool)
    except NotFound:
        timer.call(client.create_dataset, dataset, "PACED training pool")
        needs_upload = True
    if needs_upload:
        problems = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in pool]
        timer.call(client.upsert_problems, dataset, problems)
    try:
        timer.call(client.get_run, config.run)
    except NotFound:
        estimator: dict[str, Any] = {"kind": config.estimator, "window": config.estimator_window}
        if config.half_life_steps is not None:
            estimator["half_life_steps"] = config.half_life_steps
        kernel = {"alpha": config.alpha, "beta": config.beta}
        timer.call(client.create_run, config.run, dataset, kernel=kernel, estimator=estimator)


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        client: Any,
        bundle: TaskBundle,
        workdir: Path,
        device: torch.device,
        engine: Any | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.bundle = bundle
        self.workdir = Path(workdir)
        self.device = device
        self.timer = ClientTimer()
        self.counters = _Counters()
        self.metrics = MetricsLog(self.workdir / "metrics.jsonl")
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.student = bundle.student.to(device=device, dtype=dtype)
        self.teacher = bundle.teacher.to(device=device, dtype=dtype).eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.tokenizer = bundle.tokenizer
        self.pool = list(bundle.pool)
        self.by_id = {p.id: p for p in self.pool}
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # The rollout engine samples from its own copy of the student, synced with
        # load_weights before each estimate (as it would be with vLLM on a GPU).
        rows = config.rollout_batch_size
        # Or any RolloutEngine given to train() (in-process vLLM, an OpenAI-compatible server).
        self.engine = engine or TransformersEngine(
            copy.deepcopy(self.student), self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.teacher_engine = TransformersEngine(
            self.teacher, self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.verifier = make_verifier(config.verifier)
        self.drawer = BatchDrawer(client, self.timer, config.run, config.scheme, self.pool)
        self.schedule = TwoStageSchedule(config.steps, config.switch_step)
        self.references: dict[str, list[int]] = {}
        self._wall_mark = time.perf_counter()
        self._prompt_ids: dict[str, list[int]] = {}

    # ---- pieces ------------------------------------------------------------------------------

    def budget(self, problem_id: str) -> int:
        reference = self.references.get(problem_id)
        if reference is None:
            return self.config.max_new_tokens
        return min(self.config.max_new_tokens, len(reference) + EXTRA_TOKENS)

    def prompt_ids(self, problem_id: str, prompt: str) -> list[int]:
        if problem_id not in self._prompt_ids:
            self._prompt_ids[problem_id] = list(self.tokenizer(prompt)["input_ids"])
        return self._prompt_ids[problem_id]

    def load_references(self) -> None:
        """Teacher references for the pool; problems whose reference the verifier rejects
        leave the pool (distilling them would teach the teacher's mistake), counted."""
        references = self.bundle.references
        if references is None:
            key = self.bundle.teacher_key or model_fingerprint(self.teacher)
            references = teacher_references(
                self.teacher_engine,
                self.pool,
                self.workdir / "cache",
                teacher_key=key,
                max_new_tokens=self.config.max_new_tokens,
            )
        pool = [p for p in self.pool if p.id in references]
        texts = self.tokenizer.batch_decode(
            [references[p.id] for p in pool], skip_special_tokens=True
        )
        grades = self.verifier.grade(texts, [p.answer or "" for p in pool])
        self.pool = [p for p, ok in zip(pool, grades, strict=True) if ok]
        self.by_id = {p.id: p for p in self.pool}
        self.drawer.pool = self.pool
        self.references = {p.id: references[p.id] for p in self.pool}
        self.counters.extra["references_rejected"] = len(pool) - len(self.pool)
        self.counters.extra["references_missing"] = len(self.bundle.pool) - len(pool)

    def run_estimate(self, items: Sequence[Any], step: int) -> dict[str, float]:
        if not items:
            return {}
        start = time.perf_counter()
        self.engine.load_weights(self.student)
        result = estimate(
            client=self.client,
            timer=self.timer,
            run=self.config.run,
            engine=self.engine,
            verifier=self.verifier,
            items=items,
            k=self.config.k,
            seed=self.config.seed,
            step=step,
            temperature=self.config.rollout_temperature,
            budget=self.budget,
            rows_per_call=self.config.rollout_batch_size,
        )
        self.counters.rollouts += result.rollouts
        self.counters.estimate_s += time.perf_counter() - start
        return result.pass_rates

    def post_task_estimate(self, pass_rates: dict[str, float]) -> dict[str, float]:
        """Post the task's step-0 estimate (K rollouts per problem, made when the task was
        built with this same initial student) instead of rolling out again."""
        k = self.config.k
        rates = {p.id: pass_rates[p.id] for p in self.pool if p.id in pass_rates}
        outcomes = [
            {"problem_id": pid, "attempts": k, "successes": round(rate * k), "step": 0}
            for pid, rate in rates.items()
        ]
        for start in range(0, len(outcomes), 5000):
            part = outcomes[start : start + 5000]
            key = outcomes_key(self.config.run, 0, part)
            self.timer.call(self.client.post_outcomes, self.config.run, part, idempotency_key=key)
        return rates

    def refresh(self, step: int) -> int:
        """Re-roll the head of the rollout queue (unseen, stale, uncertain) at this step."""
        if self.config.refresh_size == 0:
            return 0
        queue = self.timer.call(
            self.client.rollout_queue, self.config.run, self.config.refresh_size
        )
        self.run_estimate(queue.items, step)
        self.counters.refreshes += 1
        return len(queue.items)

    def full_estimate(self, step: int) -> dict[str, float]:
        """Every pool problem, K rollouts each (zones before/after are measured this way)."""
        items = [_QueueItem(p.id, p.prompt, p.answer) for p in self.pool]
        return self.run_estimate(items, step)

    def service_agreement(self, fresh: dict[str, float]) -> dict[str, Any]:
        """How closely the service's pass rates match a fresh estimate just posted: equal
        under window "latest"; under "all" the service also averages older students in."""
        served = {
            item.problem_id: item.pass_rate
            for item in self.timer.call(lambda: list(self.client.iter_weights(self.config.run)))
        }
        gaps = [
            abs(served[pid] - rate) for pid, rate in fresh.items() if served.get(pid) is not None
        ]
        return {
            "problems": len(fresh),
            "equal": sum(gap < 1e-9 for gap in gaps),
            "max_abs_diff": max(gaps, default=0.0),
            "mean_abs_diff": sum(gaps) / len(gaps) if gaps else 0.0,
        }

    def difficulty(self) -> dict[str, Any]:
        found = self.timer.call(self.client.difficulty, self.config.run)
        return {"zones": found.zones.model_dump(), "effective_problems": found.effective_problems}

    def set_learning_rate(self, step: int) -> None:
        # A function of the step alone, so a resumed run continues the same schedule.
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * lr_scale(self.config, step)

    def normalizer(self, drawn: Sequence[Any], trained: Sequence[Any], batch: Any) -> float:
        """The loss's N over the whole drawn batch, including the zero-weight items whose
        forward pass was skipped: problems (sequence), or response tokens (token), counting
        a skipped item at its teacher reference's length since it was never generated."""
        if self.config.loss_reduction == "sequence":
            return float(len(drawn))
        trained_ids = {item.problem_id for item in trained}
        skipped = sum(
            len(self.references.get(item.problem_id, ()))
            for item in drawn
            if item.problem_id not in trained_ids
        )
        return float(batch.response_tokens + skipped)

    def loss_kind(self, step: int) -> str:
        if self.config.loss == "two-stage":
            return self.schedule.kind_at(step)
        return self.config.loss

    def responses(self, drawn: DrawnBatch, kind: str, step: int) -> list[list[int]]:
        if kind != "rkl":
            return [self.references[item.problem_id] for item in drawn.items]
        # Reverse KL is on-policy: fresh samples from the current student.
        self.engine.load_weights(self.student)
        groups = self.engine.generate(
            [item.prompt for item in drawn.items],
            1,
            seed=derive_seed(self.config.seed, step, "student-sample"),
            max_new_tokens=max(self.budget(item.problem_id) for item in drawn.items),
            temperature=self.config.rollout_temperature,
        )
        self.counters.rollouts += len(groups)
        return [group[0].token_ids for group in groups]

    # ---- one step ----------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, Any]:
        step_start = time.perf_counter()
        client_before = self.timer.total_s
        refreshed = 0
        if step > 0 and step % self.config.refresh_every == 0:
            refreshed = self.refresh(step)
        drawn = self.drawer.draw(
            self.config.batch_size,
            derive_seed(self.config.seed, step, "batch"),
            refresh=lambda: self.refresh(step),
        )
        self.counters.conflicts += drawn.conflicts
        self.counters.fallbacks += drawn.fallback is not None
        # Zero-weight items add nothing to the loss: skip their forward passes entirely.
        items = [item for item in drawn.items if item.loss_weight > 0]
        kind = self.loss_kind(step)
        train_start = time.perf_counter()
        loss_value, tokens, backward_tokens = 0.0, 0, 0
        if items:
            drawn_items = DrawnBatch(items=items)
            responses = self.responses(drawn_items, kind, step)
            prompts = [self.prompt_ids(item.problem_id, item.prompt) for item in items]
            batch = build_sequences(prompts, responses, self.tokenizer.pad_token_id, self.device)
            weights = torch.tensor([item.loss_weight for item in items], dtype=torch.float32)
            self.student.train()
            loss = distill_loss(
                self.student,
                self.teacher,
                batch,
                weights,
                kind,
                mu=self.config.akl_mu,
                temperature=self.config.temperature,
                reduction=self.config.loss_reduction,
                normalizer=self.normalizer(drawn.items, items, batch),
            )
            self.set_learning_rate(step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.config.grad_clip)
            self.optimizer.step()
            loss_value = float(loss.detach())
            tokens, backward_tokens = batch.response_tokens, batch.tokens
            self.counters.teacher_forwards += len(items)
        self.counters.train_s += time.perf_counter() - train_start
        difficulty = self.difficulty()
        step_s = time.perf_counter() - step_start
        client_s = self.timer.total_s - client_before
        self.counters.step_s += step_s
        self.counters.client_s += client_s
        self.counters.steps_run += 1
        rates = [item.pass_rate for item in drawn.items if item.pass_rate is not None]
        record = {
            "step": step,
            "loss": loss_value,
            "loss_kind": kind,
            "scheme": self.config.scheme,
            "batch_ids": [item.problem_id for item in drawn.items],
            "batch_size": len(drawn.items),
            "trained_items": len(items),
            "batch_mean_pass_rate": sum(rates) / len(rates) if rates else None,
            "batch_pass_rates": [item.pass_rate for item in drawn.items],
            "mean_loss_weight": (
                sum(i.loss_weight for i in drawn.items) / len(drawn.items) if drawn.items else 0.0
            ),
            "zones": difficulty["zones"],
            "effective_problems": difficulty["effective_problems"],
            "tokens": tokens,
            "teacher_forwards": self.counters.teacher_forwards,
            "student_backward_tokens": backward_tokens,
            "rollouts_spent": self.counters.rollouts,
            "refreshed": refreshed,
            "conflicts": drawn.conflicts,
            "fallback": drawn.fallback,
            "step_time_s": step_s,
            "client_time_s": client_s,
        }
        self.metrics.write(record)
        return record

    # ---- evaluation and checkpoints ----------------------------------------------------------

    def evaluate(self) -> dict[str, Any] | None:
        if not self.config.evaluate or self.bundle.evaluate is None:
            return None
        self.student.eval()
        report = self.bundle.evaluate(self.student)
        self.student.train()
        return report

    def record_eval(self, step: int) -> None:
        """Evaluate at a step boundary into evals.jsonl (greedy, so no RNG is consumed)."""
        report = self.evaluate()
        if report is not None:
            MetricsLog(self.workdir / "evals.jsonl").write({"step": step, **report})

    def reset_wall_clock(self, mark: float) -> None:
        self._wall_mark = mark

    def add_wall_time(self) -> None:
        now = time.perf_counter()
        self.counters.wall_s += now - self._wall_mark
        self._wall_mark = now

    def save(self, next_step: int, state: dict[str, Any]) -> None:
        self.add_wall_time()
        state = {**state, "counters": self.counters.__dict__.copy()}
        save_checkpoint(
            self.workdir,
            model=self.student,
            optimizer=self.optimizer,
            next_step=next_step,
            state=state,
        )


@dataclass(frozen=True)
class _QueueItem:
    problem_id: str
    prompt: str
    answer: str | None


def train(
    config: TrainConfig,
    client: Any,
    bundle: TaskBundle,
    workdir: str | Path,
    *,
    resume: bool = False,
    device: str | None = None,
    progress: bool | None = None,
    engine: Any | None = None,
) -> dict[str, Any]:
    """Run (or resume) PACED training; returns the summary (also written to summary.json).
    `engine` rolls out the student (default: a TransformersEngine on a copy of it)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = Trainer(config, client, bundle, workdir, select_device(device), engine)
    trainer.reset_wall_clock(started)  # setup (models, references) counts too
    trainer.load_references()  # first: only problems with a verified reference are uploaded
    ensure_run(client, trainer.timer, config, trainer.pool)

    if resume and checkpoint_path(workdir).exists():
        start_step, state = load_checkpoint(
            workdir, model=trainer.student, optimizer=trainer.optimizer
        )
        trainer.counters = _Counters(**state.pop("counters"))
    else:
        start_step = 0
        state = {"eval_before": trainer.evaluate()}
        if config.reuse_task_estimate and bundle.initial_pass_rates is not None:
            rates = trainer.post_task_estimate(bundle.initial_pass_rates)
        else:
            rates = trainer.full_estimate(step=0)
        state["zones_before"] = zone_counts(list(rates.values()))
        state["service_before"] = trainer.difficulty()

    bar = tqdm(
        range(start_step, config.steps),
        desc="train",
        unit="step",
        initial=start_step,
        total=config.steps,
        disable=None if progress is None else not progress,  # None: only on a terminal
    )
    for step in bar:
        record = trainer.train_step(step)
        bar.set_postfix(loss=f"{record['loss']:.3f}", zones=_short_zones(record["zones"]))
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            trainer.record_eval(step + 1)
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            trainer.save(step + 1, state)
    bar.close()
    trainer.save(config.steps, state)

    zones_after = None
    if config.final_estimate:
        rates = trainer.full_estimate(step=config.steps)
        zones_after = zone_counts(list(rates.values()))
        state["service_agreement"] = trainer.service_agreement(rates)
    eval_after = trainer.evaluate()
    trainer.add_wall_time()
    summary = _summary(config, trainer, state, zones_after, eval_after)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _short_zones(zones: dict[str, int]) -> str:
    return "/".join(str(zones[z]) for z in ("intractable", "frontier", "mastered"))


def _summary(
    config: TrainConfig,
    trainer: Trainer,
    state: dict[str, Any],
    zones_after: dict[str, int] | None,
    eval_after: dict[str, Any] | None,
) -> dict[str, Any]:
    counters = trainer.counters
    steps = max(1, counters.steps_run)
    return {
        "run": config.run,
        "scheme": config.scheme,
        "loss": config.loss,
        "steps": config.steps,
        "pool_size": len(trainer.pool),
        "zones_before": state.get("zones_before"),
        "zones_after": zones_after,
        "service_before": state.get("service_before"),
        "service_after": trainer.difficulty(),
        "service_agreement": state.get("service_agreement"),
        "eval_before": state.get("eval_before"),
        "eval_after": eval_after,
        "rollouts_spent": counters.rollouts,
        "teacher_forwards": counters.teacher_forwards,
        "conflicts": counters.conflicts,
        "fallbacks": counters.fallbacks,
        "refreshes": counters.refreshes,
        "timings": {
            "total_s": counters.wall_s,
            "estimate_s": counters.estimate_s,
            "train_compute_s": counters.train_s,
            "mean_step_s": counters.step_s / steps,
            "mean_client_s_per_step": counters.client_s / steps,
            "client_share_of_step": counters.client_s / counters.step_s if counters.step_s else 0.0,
        },
    }

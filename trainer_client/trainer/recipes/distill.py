"""Recipe: PACED distillation of a teacher into a student (`make demo`, `paced train`).

    summary = train(config, client, bundle, workdir)

1. Teacher reference responses for the pool (the task's, or greedy and cached on disk);
   problems whose reference the verifier rejects leave the pool.
2. The dataset and the run on the service; the step-0 estimate (K rollouts per problem, or
   the task's own), the evaluation before.
3. The shared loop (trainer/loop.py) over `Distillation.step`: a batch from the service
   (seeded by (seed, step)), teacher and student forward on the cached references (forward
   KL, AKL) or on fresh student samples (reverse KL), the weighted loss, backward, AdamW.
   Every R steps part of the rollout queue is re-rolled with the current student.
4. Checkpoints every N steps and at the end; `resume=True` continues at the saved step.
5. At the end: a full-pool estimate, the evaluation, and a summary of before -> after.

Under `torchrun` (docs/trainer.md: Multi-rank): rank 0 draws each batch and broadcasts it,
each rank trains on its share of the items with the loss normalised over the whole batch,
rollouts are split over the ranks (each posts its own outcomes), and the service's
measurements, metrics, evaluation and checkpoints are rank 0's.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from trainer_client.client import PacedClient
from trainer_client.trainer.accounting import ClientClock, Counters, StepResult
from trainer_client.trainer.bundle import TaskBundle
from trainer_client.trainer.config import TrainConfig, lr_scale
from trainer_client.trainer.distill import (
    build_sequences,
    distill_loss,
    loss_normalizer,
    token_counts,
)
from trainer_client.trainer.draws import BatchDrawer, DrawnBatch, TrainItem
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.engines.transformers_engine import TransformersEngine
from trainer_client.trainer.estimate import Estimator
from trainer_client.trainer.feed import BatchFeed
from trainer_client.trainer.losses import TwoStageSchedule
from trainer_client.trainer.measure import Measurements
from trainer_client.trainer.parallel import Student
from trainer_client.trainer.ranks import Ranks, process_group, select_device
from trainer_client.trainer.seeds import derive_seed
from trainer_client.trainer.session import Session, ensure_run
from trainer_client.trainer.teacher_cache import verified_references
from trainer_client.trainer.verifiers import make_verifier

# Generation room beyond the teacher's reference length, so a rambling student is graded
# on what it wrote rather than cut off exactly at the reference's end.
EXTRA_TOKENS = 4


def token_budget(reference: list[int] | None, cap: int) -> int:
    """A problem's max_new_tokens: its teacher reference's length plus EXTRA_TOKENS, at most
    `cap` (the cap itself without a reference)."""
    return cap if reference is None else min(cap, len(reference) + EXTRA_TOKENS)


class Distillation:
    """The models, engines and optimiser of one distillation run; `step` is one step."""

    def __init__(
        self,
        config: TrainConfig,
        bundle: TaskBundle,
        workdir: Path,
        device: torch.device,
        *,
        ranks: Ranks,
        counters: Counters,
        engine: RolloutEngine | None = None,
        fsdp: bool = False,
    ) -> None:
        self.config, self.bundle, self.device = config, bundle, device
        self.ranks, self.counters = ranks, counters
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        student = bundle.student.to(device=device, dtype=dtype)
        self.teacher = bundle.teacher.to(device=device, dtype=dtype).eval()
        self.teacher.requires_grad_(False)
        self.tokenizer = bundle.tokenizer
        rows = config.rollout_batch_size
        # Rollouts sample from the engine's own copy of the student, synced with load_weights
        # before each estimate (as with vLLM on a GPU); or any RolloutEngine given to train().
        self.engine = engine or TransformersEngine(
            copy.deepcopy(student), self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        teacher_engine = TransformersEngine(
            self.teacher, self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.student = Student(student, ranks, fsdp=fsdp)  # DDP or FSDP2 across ranks
        self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.verifier = make_verifier(config.verifier)
        self.schedule = TwoStageSchedule(config.steps, config.switch_step)
        # Verified teacher references: first, since only problems that have one are trained.
        self.pool, self.references = verified_references(
            bundle,
            teacher_engine,
            self.verifier,
            ranks=ranks,
            counters=counters,
            cache_dir=Path(workdir) / "cache",
            max_new_tokens=config.max_new_tokens,
        )
        self._prompt_ids: dict[str, list[int]] = {}

    def step(self, step: int, drawn: DrawnBatch) -> StepResult:
        kind = self.loss_kind(step)
        trained = drawn.trained  # zero-weight items add nothing: no forward pass for them
        if not trained:
            return StepResult(step, drawn, kind)
        with self.counters.timing("train_s"):
            items, responses = self.my_share(trained, kind, step)
            prompts = [self.prompt_ids(item) for item in items]
            batch = build_sequences(prompts, responses, self.tokenizer.pad_token_id, self.device)
            weights = torch.tensor([item.loss_weight for item in items], dtype=torch.float32)
            # Over all ranks; a rank with only a zero-weight stand-in counts nothing.
            mine = self.ranks.shard(trained)
            local = token_counts(prompts, responses) if mine else (0, 0)
            response_tokens, tokens = (int(n) for n in self.ranks.sum(*local))
            self.student.model.train()
            loss = distill_loss(
                self.student.model,
                self.teacher,
                batch,
                weights,
                kind,
                mu=self.config.akl_mu,
                temperature=self.config.temperature,
                reduction=self.config.loss_reduction,
                normalizer=loss_normalizer(
                    self.config.loss_reduction, drawn, response_tokens, self.references
                ),
            )
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr * lr_scale(self.config, step)
            self.optimizer.zero_grad(set_to_none=True)
            # DDP and FSDP average gradients over ranks; the loss is already normalised over
            # the whole batch, so each rank's part is scaled back up to a sum.
            (loss * self.ranks.world).backward()
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.config.grad_clip)
            self.optimizer.step()
        (loss_value,) = self.ranks.sum(float(loss.detach()))
        return StepResult(step, drawn, kind, loss_value, len(trained), response_tokens, tokens)

    def loss_kind(self, step: int) -> str:
        if self.config.loss == "two-stage":
            return self.schedule.kind_at(step)
        return self.config.loss

    def my_share(
        self, trained: list[TrainItem], kind: str, step: int
    ) -> tuple[list[TrainItem], list[list[int]]]:
        """This rank's items and their responses: teacher references, or (reverse KL, which
        is on-policy) fresh samples from the current student."""
        items = self.ranks.shard(trained)
        if kind == "rkl":
            self.engine.load_weights(self.student.rollout_weights())  # every rank, for FSDP
            responses = self.student_samples(items, step)
        else:
            responses = [self.references[item.problem_id] for item in items]
        if not items:
            # Fewer items than ranks: a zero-weight stand-in keeps this rank in the gradient
            # all-reduce (its loss is a zero connected to the student) and adds nothing.
            stand_in = dataclasses.replace(trained[0], loss_weight=0.0)
            return [stand_in], [self.references[stand_in.problem_id]]
        return items, responses

    def student_samples(self, items: list[TrainItem], step: int) -> list[list[int]]:
        if not items:
            return []
        purpose = "student-sample" if self.ranks.world == 1 else f"student-sample-{self.ranks.rank}"
        groups = self.engine.generate(
            [item.prompt for item in items],
            1,
            seed=derive_seed(self.config.seed, step, purpose),
            max_new_tokens=max(self.budget(item.problem_id) for item in items),
            temperature=self.config.rollout_temperature,
        )
        return [group[0].token_ids for group in groups]

    def budget(self, problem_id: str) -> int:
        return token_budget(self.references.get(problem_id), self.config.max_new_tokens)

    def prompt_ids(self, item: TrainItem) -> list[int]:
        if item.problem_id not in self._prompt_ids:
            self._prompt_ids[item.problem_id] = list(self.tokenizer(item.prompt)["input_ids"])
        return self._prompt_ids[item.problem_id]


def train(
    config: TrainConfig,
    client: PacedClient,
    bundle: TaskBundle,
    workdir: str | Path,
    *,
    resume: bool = False,
    device: str | None = None,
    progress: bool | None = None,
    engine: RolloutEngine | None = None,
    fsdp: bool = False,
) -> dict[str, Any]:
    """Run (or resume) PACED distillation; returns the summary (also written to summary.json).
    `engine` rolls out the student (default: a TransformersEngine on a copy of it). Under
    torchrun every rank calls this; `fsdp` shards the student instead of replicating it."""
    started = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with process_group() as ranks, ClientClock().attached(client) as clock:
        counters = Counters()
        recipe = Distillation(
            config,
            bundle,
            workdir,
            select_device(ranks, device),
            ranks=ranks,
            counters=counters,
            engine=engine,
            fsdp=fsdp,
        )
        if ranks.is_main:  # only problems with a verified reference are uploaded
            ensure_run(client, config, recipe.pool)
        ranks.barrier()  # the run exists before any rank posts to it
        estimator = Estimator(
            client,
            config.run,
            recipe.engine,
            recipe.verifier,
            k=config.k,
            seed=config.seed,
            temperature=config.rollout_temperature,
            budget=recipe.budget,
            rows_per_call=config.rollout_batch_size,
            ranks=ranks,
            counters=counters,
            weights=recipe.student.rollout_weights,
        )
        drawer = BatchDrawer(
            client, config.run, config.scheme, recipe.pool, size=config.batch_size, seed=config.seed
        )
        feed = BatchFeed(
            drawer,
            client,
            config.run,
            steps=config.steps,
            ranks=ranks,
            clock=clock,
            counters=counters,
            estimate=estimator,
            refresh_every=config.refresh_every,
            refresh_size=config.refresh_size,
            prefetch=config.prefetch,
            difficulty=True,
        )
        evaluate = bundle.evaluate if config.evaluate else None
        measure = Measurements(
            client,
            config.run,
            recipe.student,
            estimator,
            ranks=ranks,
            workdir=workdir,
            evaluate=evaluate,
        )
        session = Session(config, recipe, feed, measure, workdir=workdir, counters=counters)
        try:
            task_rates = bundle.initial_pass_rates if config.reuse_task_estimate else None
            return session.run(
                resume=resume, progress=progress, started=started, task_pass_rates=task_rates
            )
        finally:
            feed.close()

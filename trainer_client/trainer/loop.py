"""The PACED training loop: estimate pass rates, draw weighted batches, distill, refresh.

    summary = train(config, client, bundle, workdir)

1. Make sure the dataset (the task's pool) and the run exist on the service.
2. Teacher reference responses for the pool: greedy, generated once, cached on disk.
3. Estimate: the rollout queue's problems, K student samples each, graded, posted (step 0).
4. Each step (`Trainer.train_step`): a batch from the service (seeded by (seed, step)),
   teacher and student forward on the cached references (forward KL) or on fresh student
   samples (reverse KL), the weighted loss, backward, AdamW step; one JSON line of metrics.
   Every R steps part of the queue is re-rolled with the current student.
5. Checkpoints every N steps and at the end; `resume=True` continues at the saved step.
6. At the end: a full-pool estimate and evaluation, and a summary of before -> after.

Under `torchrun` (docs/trainer.md: Multi-rank): rank 0 draws each batch and broadcasts it,
each rank trains on its share of the items with the loss normalised over the whole batch,
rollouts are split over the ranks (each posts its own outcomes), and the service's
measurements, metrics, evaluation and checkpoints are rank 0's. Bookkeeping lives in
`accounting`, the ranks in `ranks` and `parallel`; the task comes as a `TaskBundle`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from trainer_client.client import PacedClient
from trainer_client.errors import NotFound
from trainer_client.heap import startup_heap_frozen
from trainer_client.models import RolloutQueue
from trainer_client.trainer.accounting import (
    ClientClock,
    Counters,
    StepResult,
    count_step,
    step_record,
)
from trainer_client.trainer.batches import BatchDrawer, DrawnBatch, TrainItem
from trainer_client.trainer.bundle import TaskBundle
from trainer_client.trainer.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from trainer_client.trainer.config import TrainConfig, lr_scale
from trainer_client.trainer.distill import build_sequences, distill_loss
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.engines.transformers_engine import TransformersEngine
from trainer_client.trainer.estimate import estimate, post_outcomes
from trainer_client.trainer.losses import TwoStageSchedule
from trainer_client.trainer.metrics import MetricsLog, zone_counts
from trainer_client.trainer.parallel import Student
from trainer_client.trainer.prefetch import BatchPrefetcher
from trainer_client.trainer.ranks import Ranks, process_group, select_device
from trainer_client.trainer.seeds import derive_seed
from trainer_client.trainer.teacher_cache import model_fingerprint, teacher_references
from trainer_client.trainer.verifiers import make_verifier

# Generation room beyond the teacher's reference length, so a rambling student is graded
# on what it wrote rather than cut off exactly at the reference's end.
EXTRA_TOKENS = 4
# What rank 0 broadcasts instead of a batch when a 409 makes it re-estimate first.
_REFRESH = "refresh"


class _RefreshFirst(Exception):
    """A batch drawn ahead met a 409: it is drawn again on the training thread, which
    re-estimates first (rollouts are not run from the prefetch thread)."""


def _refresh_first() -> None:
    raise _RefreshFirst


@dataclass(frozen=True)
class _PoolItem:
    problem_id: str
    prompt: str
    answer: str | None


def ensure_run(client: PacedClient, config: TrainConfig, pool: Sequence[Any]) -> None:
    """Create the dataset (uploading the pool) and the run unless they exist."""
    dataset = config.dataset_name
    try:
        needs_upload = client.get_dataset(dataset).problem_count != len(pool)
    except NotFound:
        client.create_dataset(dataset, "PACED training pool")
        needs_upload = True
    if needs_upload:
        problems = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in pool]
        client.upsert_problems(dataset, problems)
    try:
        client.get_run(config.run)
    except NotFound:
        estimator: dict[str, Any] = {"kind": config.estimator, "window": config.estimator_window}
        if config.half_life_steps is not None:
            estimator["half_life_steps"] = config.half_life_steps
        kernel = {"alpha": config.alpha, "beta": config.beta}
        client.create_run(config.run, dataset, kernel=kernel, estimator=estimator)


class Trainer:
    """One PACED distillation run: models, engines and optimiser are set up here;
    `train_step` is one step, `fit` the whole run."""

    def __init__(
        self,
        config: TrainConfig,
        client: PacedClient,
        bundle: TaskBundle,
        workdir: Path,
        device: torch.device,
        *,
        ranks: Ranks,
        clock: ClientClock,
        engine: RolloutEngine | None = None,
        fsdp: bool = False,
    ) -> None:
        self.config, self.client, self.bundle = config, client, bundle
        self.workdir, self.device = Path(workdir), device
        self.ranks, self.clock = ranks, clock
        self.counters = Counters()
        self.metrics = MetricsLog(self.workdir / "metrics.jsonl")
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        student = bundle.student.to(device=device, dtype=dtype)
        self.teacher = bundle.teacher.to(device=device, dtype=dtype).eval()
        self.teacher.requires_grad_(False)
        self.tokenizer = bundle.tokenizer
        self.pool = list(bundle.pool)
        rows = config.rollout_batch_size
        # Rollouts sample from the engine's own copy of the student, synced with load_weights
        # before each estimate (as with vLLM on a GPU); or any RolloutEngine given to train().
        self.engine = engine or TransformersEngine(
            copy.deepcopy(student), self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.teacher_engine = TransformersEngine(
            self.teacher, self.tokenizer, batch_size=rows, add_special_tokens=True
        )
        self.student = Student(student, ranks, fsdp=fsdp)  # DDP or FSDP2 across ranks
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.verifier = make_verifier(config.verifier)
        self.drawer = BatchDrawer(client, config.run, config.scheme, self.pool)
        self.schedule = TwoStageSchedule(config.steps, config.switch_step)
        self.references: dict[str, list[int]] = {}
        self._prompt_ids: dict[str, list[int]] = {}
        # Off the critical path (rank 0): step t+1's batch is drawn while step t trains, and
        # the difficulty of step t is read while it trains. Neither changes what is drawn:
        # nothing is posted between two draws except at refresh steps, which are never
        # drawn ahead (the refresh's outcomes must be in first).
        prefetch = config.prefetch and ranks.is_main
        self.ahead = (
            BatchPrefetcher(self._draw_ahead, ahead=self._may_draw_ahead) if prefetch else None
        )
        self._reader = ThreadPoolExecutor(1, "paced-difficulty") if prefetch else None
        self._step_difficulty: Future[dict[str, Any]] | None = None
        self._queue_ahead: tuple[int, Future[RolloutQueue]] | None = None

    # ---- one step: batch -> forward -> loss -> backward -> step ------------------------------

    def train_step(self, step: int) -> StepResult:
        refreshed = self.refresh(step) if self._refreshes_at(step) else 0
        drawn = self.next_batch(step)
        kind = self.loss_kind(step)
        trained = drawn.trained  # zero-weight items add nothing: no forward pass for them
        if not trained:
            return StepResult(step, drawn, kind, refreshed=refreshed)
        with self.counters.timing("train_s"):
            items, responses = self.my_share(trained, kind, step)
            prompts = [self.prompt_ids(item) for item in items]
            batch = build_sequences(prompts, responses, self.tokenizer.pad_token_id, self.device)
            weights = torch.tensor([item.loss_weight for item in items], dtype=torch.float32)
            response_tokens, tokens = self.token_counts(trained, prompts, responses)
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
                normalizer=self.normalizer(drawn, trained, response_tokens),
            )
            self.set_learning_rate(step)
            self.optimizer.zero_grad(set_to_none=True)
            # DDP and FSDP average gradients over ranks; the loss is already normalised over
            # the whole batch, so each rank's part is scaled back up to a sum.
            (loss * self.ranks.world).backward()
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.config.grad_clip)
            self.optimizer.step()
        (loss_value,) = self.ranks.sum(float(loss.detach()))
        return StepResult(
            step, drawn, kind, loss_value, len(trained), response_tokens, tokens, refreshed
        )

    # ---- the service: where batches come from, where outcomes go -----------------------------

    def next_batch(self, step: int) -> DrawnBatch:
        """Rank 0 draws the step's batch (seeded by (seed, step)) and every rank gets it; a
        409 re-estimation on the way (batches.BatchDrawer) runs on every rank too."""
        if not self.ranks.is_main:
            while (message := self.ranks.broadcast(None)) == _REFRESH:
                self.refresh(step)
            return message  # type: ignore[return-value]

        def refresh_everywhere() -> None:
            self.ranks.broadcast(_REFRESH)
            self.refresh(step)

        drawn = None
        if self.ahead is not None:
            try:
                with self.clock.waiting():
                    drawn = self.ahead.get(step)
            except _RefreshFirst:
                drawn = None  # drawn again just below, where the refresh can run
        if drawn is None:
            drawn = self._draw(step, refresh_everywhere)
        if self._reader is not None:
            self._step_difficulty = self._reader.submit(self.difficulty)
            if self._refreshes_at(step + 1):  # nothing is posted before that refresh asks
                self._queue_ahead = (step + 1, self._reader.submit(self._rollout_queue))
        return self.ranks.broadcast(drawn)

    def _draw(self, step: int, refresh: Callable[[], object]) -> DrawnBatch:
        seed = derive_seed(self.config.seed, step, "batch")
        return self.drawer.draw(self.config.batch_size, seed, refresh=refresh)

    def _draw_ahead(self, step: int) -> DrawnBatch:
        return self._draw(step, _refresh_first)

    def _may_draw_ahead(self, step: int) -> bool:
        return step < self.config.steps and not self._refreshes_at(step)

    def _refreshes_at(self, step: int) -> bool:
        return step > 0 and step % self.config.refresh_every == 0 and self.config.refresh_size > 0

    def difficulty_after_step(self) -> dict[str, Any]:
        """The run's difficulty after this step's draw (read while the step trained)."""
        future, self._step_difficulty = self._step_difficulty, None
        if future is None:
            return self.difficulty()
        with self.clock.waiting():
            return future.result()

    def close(self) -> None:
        """Stop the background threads (requests in flight finish)."""
        if self.ahead is not None:
            self.ahead.close()
        if self._reader is not None:
            self._reader.shutdown(wait=True)

    def post_outcomes(self, step: int, outcomes: list[dict[str, Any]]) -> None:
        """Each rank posts the outcomes it rolled out, under a key of its own."""
        suffix = f"-r{self.ranks.rank}" if self.ranks.world > 1 else ""
        post_outcomes(self.client, self.config.run, step, outcomes, key_suffix=suffix)

    # ---- pass rates --------------------------------------------------------------------------

    def run_estimate(self, items: Sequence[Any], step: int) -> dict[str, float]:
        """K rollouts of each item, split over the ranks; every rank returns all pass rates."""
        if not items:
            return {}
        with self.counters.timing("estimate_s"):
            self.engine.load_weights(self.student.rollout_weights())
            mine = estimate(
                engine=self.engine,
                verifier=self.verifier,
                items=items,
                k=self.config.k,
                seed=self.config.seed,
                step=step,
                temperature=self.config.rollout_temperature,
                budget=self.budget,
                rows_per_call=self.config.rollout_batch_size,
                rank=self.ranks.rank,
                world=self.ranks.world,
            )
            self.post_outcomes(step, mine.outcomes)
            # Also a barrier: every rank's outcomes are in before rank 0 draws again.
            shares = self.ranks.gather((mine.pass_rates, mine.rollouts))
        self.counters.rollouts += sum(rollouts for _, rollouts in shares)
        return {pid: rate for rates, _ in shares for pid, rate in rates.items()}

    def post_task_estimate(self, pass_rates: dict[str, float]) -> dict[str, float]:
        """Post the task's step-0 estimate (K rollouts per problem, made when the task was
        built with this same initial student) instead of rolling out again (rank 0)."""
        k = self.config.k
        rates = {p.id: pass_rates[p.id] for p in self.pool if p.id in pass_rates}
        outcomes = [
            {"problem_id": pid, "attempts": k, "successes": round(rate * k), "step": 0}
            for pid, rate in rates.items()
        ]
        for start in range(0, len(outcomes), 5000):
            self.post_outcomes(0, outcomes[start : start + 5000])
        return rates

    def refresh(self, step: int) -> int:
        """Re-roll the head of the rollout queue (unseen, stale, uncertain) at this step."""
        if self.config.refresh_size == 0:
            return 0
        queue = self.ranks.from_main(lambda: self._scheduled_queue(step))
        self.run_estimate(queue.items, step)
        self.counters.refreshes += 1
        return len(queue.items)

    def _rollout_queue(self) -> RolloutQueue:
        return self.client.rollout_queue(self.config.run, self.config.refresh_size)

    def _scheduled_queue(self, step: int) -> RolloutQueue:
        """The queue read ahead for this step's scheduled refresh, else read now."""
        ahead, self._queue_ahead = self._queue_ahead, None
        if ahead is None or ahead[0] != step:
            return self._rollout_queue()
        with self.clock.waiting():
            return ahead[1].result()

    def full_estimate(self, step: int) -> dict[str, float]:
        """Every pool problem, K rollouts each (zones before/after are measured this way)."""
        return self.run_estimate([_PoolItem(p.id, p.prompt, p.answer) for p in self.pool], step)

    # ---- pieces of a step --------------------------------------------------------------------

    def loss_kind(self, step: int) -> str:
        if self.config.loss == "two-stage":
            return self.schedule.kind_at(step)
        return self.config.loss

    def set_learning_rate(self, step: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * lr_scale(self.config, step)

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

    def token_counts(
        self, trained: list[TrainItem], prompts: list[list[int]], responses: list[list[int]]
    ) -> tuple[int, int]:
        """(response tokens, prompt + response tokens) of the trained items, over all ranks."""
        local = (0, 0)  # a rank with only a zero-weight stand-in counts nothing
        if self.ranks.shard(trained):
            pairs = zip(prompts, responses, strict=True)
            local = (sum(len(r) for r in responses), sum(len(p) + len(r) for p, r in pairs))
        response_tokens, tokens = self.ranks.sum(*local)
        return int(response_tokens), int(tokens)

    def normalizer(
        self, drawn: DrawnBatch, trained: list[TrainItem], response_tokens: int
    ) -> float:
        """The loss's N over the whole drawn batch, on every rank alike, including the
        zero-weight items whose forward pass was skipped: problems (sequence), or response
        tokens (token), counting a skipped item at its teacher reference's length."""
        if self.config.loss_reduction == "sequence":
            return float(len(drawn.items))
        trained_ids = {item.problem_id for item in trained}
        skipped = sum(
            len(self.references.get(item.problem_id, ()))
            for item in drawn.items
            if item.problem_id not in trained_ids
        )
        return float(response_tokens + skipped)

    def budget(self, problem_id: str) -> int:
        reference = self.references.get(problem_id)
        if reference is None:
            return self.config.max_new_tokens
        return min(self.config.max_new_tokens, len(reference) + EXTRA_TOKENS)

    def prompt_ids(self, item: TrainItem) -> list[int]:
        if item.problem_id not in self._prompt_ids:
            self._prompt_ids[item.problem_id] = list(self.tokenizer(item.prompt)["input_ids"])
        return self._prompt_ids[item.problem_id]

    # ---- the run -----------------------------------------------------------------------------

    def load_references(self) -> None:
        """Teacher references for the pool; problems whose reference the verifier rejects
        leave the pool (distilling them would teach the teacher's mistake), counted.
        Generated (and cached) on rank 0 when the task has none."""
        references = self.bundle.references
        if references is None:
            references = self.ranks.from_main(self.generate_references)
        pool = [p for p in self.pool if p.id in references]
        texts = self.tokenizer.batch_decode(
            [references[p.id] for p in pool], skip_special_tokens=True
        )
        grades = self.verifier.grade(texts, [p.answer or "" for p in pool])
        self.pool = [p for p, ok in zip(pool, grades, strict=True) if ok]
        self.drawer.pool = self.pool
        self.references = {p.id: references[p.id] for p in self.pool}
        self.counters.references_rejected = len(pool) - len(self.pool)
        self.counters.references_missing = len(self.bundle.pool) - len(pool)

    def generate_references(self) -> dict[str, list[int]]:
        return teacher_references(
            self.teacher_engine,
            self.pool,
            self.workdir / "cache",
            teacher_key=self.bundle.teacher_key or model_fingerprint(self.teacher),
            max_new_tokens=self.config.max_new_tokens,
        )

    def fit(self, *, resume: bool, progress: bool | None, started: float) -> dict[str, Any]:
        """The whole run on this rank; returns the summary (rank 0's, on every rank)."""
        main, config = self.ranks.is_main, self.config
        wall_mark = started  # setup (models, references) counts too
        self.load_references()  # first: only problems with a verified reference are uploaded
        if main:
            ensure_run(self.client, config, self.pool)
        self.ranks.barrier()  # the run exists before any rank posts to it
        if resume and checkpoint_path(self.workdir).exists():
            start_step, state = self.restore()
        else:
            start_step, state = 0, self.measure_before()
        # The models and references stay for the whole loop: full collections skip them
        # (trainer_client/heap.py: each cost ~120 ms with torch loaded).
        with startup_heap_frozen():
            bar = tqdm(
                range(start_step, config.steps),
                desc="train",
                unit="step",
                initial=start_step,
                total=config.steps,
                # None: only on a terminal; never on ranks other than 0
                disable=not main or (None if progress is None else not progress),
            )
            for step in bar:
                with self.clock.lap() as lap:
                    result = self.train_step(step)
                    difficulty = self.difficulty_after_step() if main else None
                count_step(self.counters, result, lap)
                if difficulty is not None:
                    record = step_record(result, config.scheme, difficulty, self.counters, lap)
                    self.metrics.write(record)
                    bar.set_postfix(loss=f"{result.loss:.3f}", zones=_short_zones(record["zones"]))
                if (
                    config.eval_every
                    and (step + 1) % config.eval_every == 0
                    and step + 1 < config.steps
                ):
                    self.record_eval(step + 1)
                if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                    wall_mark = self.save(step + 1, state, wall_mark)
            bar.close()
        wall_mark = self.save(config.steps, state, wall_mark)
        return self.measure_after(state, wall_mark)

    def measure_before(self) -> dict[str, Any]:
        """Evaluation, zones and the service's view before training (the loop's state)."""
        state: dict[str, Any] = {"eval_before": self.evaluate()}
        if self.config.reuse_task_estimate and self.bundle.initial_pass_rates is not None:
            rates = (
                self.post_task_estimate(self.bundle.initial_pass_rates)
                if self.ranks.is_main
                else {}
            )
        else:
            rates = self.full_estimate(step=0)
        state["zones_before"] = zone_counts(list(rates.values()))
        state["service_before"] = self.difficulty() if self.ranks.is_main else None
        return state

    def measure_after(self, state: dict[str, Any], wall_mark: float) -> dict[str, Any]:
        zones_after = None
        if self.config.final_estimate:
            rates = self.full_estimate(step=self.config.steps)
            zones_after = zone_counts(list(rates.values()))
            if self.ranks.is_main:
                state["service_agreement"] = self.service_agreement(rates)
        eval_after = self.evaluate()
        self.counters.wall_s += time.perf_counter() - wall_mark
        summary = None
        if self.ranks.is_main:
            summary = _summary(self, state, zones_after, eval_after)
            path = self.workdir / "summary.json"
            path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return self.ranks.broadcast(summary)  # type: ignore[arg-type]

    # ---- measurements (rank 0) ---------------------------------------------------------------

    def difficulty(self) -> dict[str, Any]:
        found = self.client.difficulty(self.config.run)
        return {"zones": found.zones.model_dump(), "effective_problems": found.effective_problems}

    def service_agreement(self, fresh: dict[str, float]) -> dict[str, Any]:
        """How closely the service's pass rates match a fresh estimate just posted: equal
        under window "latest"; under "all" the service also averages older students in."""
        served = {
            item.problem_id: item.pass_rate for item in self.client.iter_weights(self.config.run)
        }
        gaps = [abs(p - rate) for pid, rate in fresh.items() if (p := served.get(pid)) is not None]
        return {
            "problems": len(fresh),
            "equal": sum(gap < 1e-9 for gap in gaps),
            "max_abs_diff": max(gaps, default=0.0),
            "mean_abs_diff": sum(gaps) / len(gaps) if gaps else 0.0,
        }

    def evaluate(self) -> dict[str, Any] | None:
        """The task's evaluation of the student, on rank 0 (None elsewhere)."""
        if not self.config.evaluate or self.bundle.evaluate is None:
            return None
        student = self.student.full_module()  # gathering FSDP shards takes every rank
        if not self.ranks.is_main:
            return None
        student.eval()
        report = self.bundle.evaluate(student)
        student.train()
        return report

    def record_eval(self, step: int) -> None:
        """Evaluate at a step boundary into evals.jsonl (greedy, so no RNG is consumed)."""
        report = self.evaluate()
        if report is not None:
            MetricsLog(self.workdir / "evals.jsonl").write({"step": step, **report})

    # ---- checkpoints -------------------------------------------------------------------------

    def save(self, next_step: int, state: dict[str, Any], wall_mark: float) -> float:
        """Checkpoint (rank 0 writes it); returns the new mark of the session's wall time."""
        now = time.perf_counter()
        self.counters.wall_s += now - wall_mark
        model_state, optimizer_state = self.student.state_dicts(self.optimizer)
        if self.ranks.is_main:
            save_checkpoint(
                self.workdir,
                model_state=model_state,
                optimizer_state=optimizer_state,
                next_step=next_step,
                state={**state, "counters": self.counters.to_dict()},
            )
        return now

    def restore(self) -> tuple[int, dict[str, Any]]:
        """Every rank loads the checkpoint rank 0 wrote; returns (next step, loop state)."""
        saved = load_checkpoint(self.workdir)
        self.student.load_state_dicts(self.optimizer, saved.model_state, saved.optimizer_state)
        state = dict(saved.state)
        self.counters = Counters(**state.pop("counters"))
        return saved.next_step, state


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
    """Run (or resume) PACED training; returns the summary (also written to summary.json).
    `engine` rolls out the student (default: a TransformersEngine on a copy of it). Under
    torchrun every rank calls this; `fsdp` shards the student instead of replicating it."""
    started = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with process_group() as ranks, ClientClock().attached(client) as clock:
        trainer = Trainer(
            config,
            client,
            bundle,
            workdir,
            select_device(ranks, device),
            ranks=ranks,
            clock=clock,
            engine=engine,
            fsdp=fsdp,
        )
        try:
            return trainer.fit(resume=resume, progress=progress, started=started)
        finally:
            trainer.close()


def _short_zones(zones: dict[str, int]) -> str:
    return "/".join(str(zones[z]) for z in ("intractable", "frontier", "mastered"))


def _summary(
    trainer: Trainer,
    state: dict[str, Any],
    zones_after: dict[str, int] | None,
    eval_after: dict[str, Any] | None,
) -> dict[str, Any]:
    config, counters = trainer.config, trainer.counters
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
        "references_rejected": counters.references_rejected,
        "references_missing": counters.references_missing,
        "timings": {
            "total_s": counters.wall_s,
            "estimate_s": counters.estimate_s,
            "train_compute_s": counters.train_s,
            "mean_step_s": counters.step_s / steps,
            "mean_client_s_per_step": counters.client_s / steps,
            "client_share_of_step": counters.client_s / counters.step_s if counters.step_s else 0.0,
            # requests sent ahead by the prefetch threads, while steps trained (whole run)
            "client_background_s": trainer.clock.background_s,
        },
    }

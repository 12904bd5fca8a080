"""One training run's rollouts fed to several estimators at once, and fresh pass rates to
score them against (the estimator-error experiment, experiments/estimator_error.py).

Every estimator is a run of its own on the service, on the same dataset. The trainer posts
its outcomes to its own run; `TeeClient` posts each of those posts again to the mirror runs
(all of a post, or the half of a re-estimation post a mirror's budget keeps). So every
estimator reads exactly the rollouts of one student trajectory, and their errors differ by
the estimator alone.

`FreshProbe` is the task's evaluation wrapped: at each evaluated step it also rolls out a
fixed sample of pool problems K times with the current student (seeded, never posted) and
reads every estimator's pass rate and weight of those problems from the service.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.models import OutcomesAccepted
from trainer_client.trainer.draws import TrainItem
from trainer_client.trainer.estimate import estimate
from trainer_client.trainer.outcomes import outcome_key

READ_CHUNK = 1000  # problem ids per weights request


@dataclass(frozen=True)
class Mirror:
    run: str
    budget: float  # the share of re-estimation posts (step > 0) this estimator receives


def in_half(problem_id: str) -> bool:
    """A fixed half of the pool (by a hash of the id): the re-estimations a half budget keeps."""
    return hashlib.sha256(problem_id.encode()).digest()[0] % 2 == 0


def kept_by(mirror: Mirror, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The part of one post that `mirror` receives: all of it at step 0 (the initial estimate
    is common to every estimator) or at full budget; else the half `in_half` keeps."""
    if mirror.budget >= 1.0:
        return outcomes
    if mirror.budget != 0.5:
        raise ValueError("budgets are 1.0 or 0.5")
    return [o for o in outcomes if o.get("step") in (0, None) or in_half(o["problem_id"])]


class TeeClient(PacedClient):
    """A PacedClient whose outcome posts to `source` also go to every mirror run; the number
    of re-estimation rollouts each mirror received is counted (its budget spent)."""

    def __init__(self, url: str, source: str, mirrors: Sequence[Mirror], **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.source, self.mirrors = source, list(mirrors)
        self.spent = {m.run: 0 for m in self.mirrors} | {source: 0}
        self.on_difficulty: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def post_outcomes(
        self,
        run: str,
        outcomes: Iterable[Any],
        idempotency_key: str | None = None,
    ) -> OutcomesAccepted:
        posted = [dict(o) for o in outcomes]
        accepted = super().post_outcomes(run, posted, idempotency_key)
        if run != self.source:
            return accepted
        self._count(run, posted)
        for mirror in self.mirrors:
            share = kept_by(mirror, posted)
            if share:
                step = share[0].get("step")
                super().post_outcomes(mirror.run, share, outcome_key(mirror.run, step, 0, share))
                self._count(mirror.run, share)
        return accepted

    def difficulty(self, run: str, bins: int = 10) -> Any:
        # The trainer reads the difficulty right after posting the initial estimate: the
        # moment the step-0 readings can be taken (FreshProbe.take_pending).
        if self.on_difficulty is not None:
            self.on_difficulty()
        return super().difficulty(run, bins)

    def _count(self, run: str, outcomes: list[dict[str, Any]]) -> None:
        spent = sum(int(o["attempts"]) for o in outcomes if o.get("step") not in (0, None))
        with self._lock:
            self.spent[run] += spent


def read_estimates(
    client: PacedClient, runs: Sequence[str], problem_ids: Sequence[str]
) -> dict[str, dict[str, tuple[float | None, float]]]:
    """run -> problem id -> (pass rate, weight) as the service serves them now."""
    found: dict[str, dict[str, tuple[float | None, float]]] = {}
    for run in runs:
        rows: dict[str, tuple[float | None, float]] = {}
        for start in range(0, len(problem_ids), READ_CHUNK):
            page = client.weights(run, problem_ids=list(problem_ids[start : start + READ_CHUNK]))
            rows.update({item.problem_id: (item.pass_rate, item.weight) for item in page.items})
        found[run] = rows
    return found


class FreshProbe:
    """The task's evaluation plus, at every evaluated step, the fresh K-rollout pass rates of
    `sample` and every estimator's reading of them (`points`, in step order)."""

    def __init__(
        self,
        evaluate: Callable[[Any], dict[str, Any]],
        client: PacedClient,
        runs: Sequence[str],
        sample: Sequence[Any],
        make_engine: Callable[[Any], Any],
        verifier: Any,
        *,
        k: int,
        seed: int,
        budget: Callable[[str], int],
        eval_steps: Sequence[int],
    ) -> None:
        self.task_evaluate, self.client, self.runs = evaluate, client, list(runs)
        self.sample = [TrainItem(p.id, p.prompt, p.answer, None, 1.0) for p in sample]
        self.make_engine, self.verifier = make_engine, verifier
        self.k, self.seed, self.budget = k, seed, budget
        self.steps = list(eval_steps)  # the steps evaluate() is called at, in order
        self.points: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None

    def __call__(self, model: Any) -> dict[str, Any]:
        step = self.steps[len(self.points) + (self._pending is not None)]
        fresh = estimate(
            engine=self.make_engine(model),
            verifier=self.verifier,
            items=self.sample,
            k=self.k,
            seed=self.seed + 7919,  # a stream of its own: never the training rollouts' seeds
            step=step,
            temperature=1.0,
            budget=self.budget,
            rows_per_call=512,
        )
        point = {"step": step, "fresh": fresh.pass_rates, "rollouts": fresh.rollouts}
        if step == 0:
            self._pending = point  # the estimators have no outcome yet: read after the post
        else:
            self._read(point)
        return self.task_evaluate(model)

    def take_pending(self) -> None:
        if self._pending is not None:
            point, self._pending = self._pending, None
            self._read(point)

    def _read(self, point: dict[str, Any]) -> None:
        ids = [item.problem_id for item in self.sample]
        point["estimates"] = read_estimates(self.client, self.runs, ids)
        self.points.append(point)


def reading_rows(
    point: Mapping[str, Any], runs: Mapping[str, str], levels: Mapping[str, int]
) -> list[dict[str, Any]]:
    """One checkpoint's figures per estimator: mean |p_hat - p_fresh| over the sample (and per
    level), and the share of its draws (proportional to its weights) that land on problems
    whose fresh pass rate is 0 or 1."""
    fresh: dict[str, float] = point["fresh"]
    rows = []
    for arm, run in runs.items():
        estimates = point["estimates"][run]
        errors: dict[int, list[float]] = {}
        at_edge = total = 0.0
        for pid, p in fresh.items():
            rate, weight = estimates[pid]
            errors.setdefault(levels[pid], []).append(abs((rate or 0.0) - p))
            total += weight
            at_edge += weight if p in (0.0, 1.0) else 0.0
        every = [e for level in errors.values() for e in level]
        rows.append(
            {
                "arm": arm,
                "step": point["step"],
                "mean_abs_error": sum(every) / len(every),
                "per_level": {str(lv): sum(e) / len(e) for lv, e in sorted(errors.items())},
                "draws_at_edge": at_edge / total if total > 0 else float("nan"),
            }
        )
    return rows

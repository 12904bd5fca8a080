"""Read side of a run: weights, per-problem stats, difficulty, rollout queue, and the
building blocks of a batch (the batch use case itself: domain/sampler.py)."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from service.curriculum import draws
from service.curriculum.estimators import ZONE_NAMES, zones
from service.curriculum.exploration import draw_rng
from service.curriculum.summaries import QueueReason
from service.db import UnitOfWork
from service.domain.estimation import estimator_for
from service.domain.index_registry import IndexRegistry, RunIndex
from service.domain.predictions import from_index as _predicted
from service.domain.priors import of_problems as _priors_of
from service.domain.prompt_cache import Text
from service.domain.views import (
    Difficulty,
    ProblemStatsOut,
    QueueItem,
    RolloutQueue,
    WeightItem,
    WeightsPage,
)
from service.errors import Conflict, InvalidItems, NotFound
from service.models import Run
from service.store import datasets as dataset_store
from service.store import errored as errored_store
from service.store import stats as stats_store


def _float_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _stat_items(
    run: Run,
    rows: list[tuple[Any, ...]],
    priors: list[tuple[float, float]],
    predicted: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[WeightItem]:
    """rows: (external_id, total_attempts, total_successes, eff_attempts, eff_successes);
    priors: each row's prior pseudo-counts, added to its counts as the index adds them;
    predicted: the predicted estimator's (pass rates, weights) from the index (NaN: none)."""
    if not rows:
        return []
    prior_n = np.array([p[0] for p in priors], dtype=np.float64)
    prior_k = np.array([p[1] for p in priors], dtype=np.float64)
    eff_attempts = np.array([r[3] or 0.0 for r in rows], dtype=np.float64) + prior_n
    eff_successes = np.array([r[4] or 0.0 for r in rows], dtype=np.float64) + prior_k
    estimator = estimator_for(run)
    weights = estimator.weights(eff_attempts, eff_successes)
    pass_rates = estimator.pass_rates(eff_attempts, eff_successes)
    if predicted is not None:
        have = np.isfinite(predicted[1])
        pass_rates = np.where(have, predicted[0], pass_rates)
        weights = np.where(have, predicted[1], weights)
    return [
        WeightItem(
            problem_id=r[0],
            attempts=int(r[1] or 0),
            successes=int(r[2] or 0),
            pass_rate=_float_or_none(p),
            weight=float(w),
            prior_attempts=float(n0),
            prior_successes=float(k0),
        )
        for r, p, w, n0, k0 in zip(rows, pass_rates, weights, prior_n, prior_k, strict=True)
    ]


def problem_stats(
    uow: UnitOfWork, run: Run, problem_id: str, registry: IndexRegistry | None = None
) -> ProblemStatsOut:
    problem = dataset_store.get_problem(uow.session, run.dataset_id, problem_id)
    if problem is None:
        raise NotFound(f"problem {problem_id!r} not found in the dataset of run {run.name!r}")
    stats = stats_store.stats_for_problem(uow.session, run.id, problem.id)
    row = (
        (problem_id, stats.total_attempts, stats.total_successes, stats.attempts, stats.successes)
        if stats
        else (problem_id, 0, 0, 0.0, 0.0)
    )
    ids = [problem.id]
    priors, predicted = _priors_of(uow, run, ids), _predicted(uow, run, registry, ids)
    (item,) = _stat_items(run, [row], priors, predicted)
    evidence = (item.prior_attempts + row[3], item.prior_successes + row[4])
    zone = zones(np.array([evidence[0]]), np.array([evidence[1]]))[0]
    return ProblemStatsOut(
        **item.model_dump(),
        zone=ZONE_NAMES[int(zone)],
        last_step=stats.last_step if stats else None,
        errored=errored_store.of_problem(uow.session, run.id, problem.id),
    )


def weights(
    uow: UnitOfWork,
    run: Run,
    problem_ids: list[str] | None,
    cursor: str | None,
    limit: int,
    registry: IndexRegistry | None = None,
) -> WeightsPage:
    session = uow.session
    if problem_ids is not None:
        mapping = dataset_store.ids_for_external(session, run.dataset_id, problem_ids)
        unknown = sorted(set(problem_ids) - mapping.keys())
        if unknown:
            raise unknown_problem_ids(unknown)
        stats = stats_store.stats_for_problems(session, run.id, list(mapping.values()))
        rows = []
        for ext in problem_ids:
            s = stats.get(mapping[ext])
            rows.append((ext, *(s[:4] if s else (0, 0, 0.0, 0.0))))
        ids = [mapping[ext] for ext in problem_ids]
        priors, predicted = _priors_of(uow, run, ids), _predicted(uow, run, registry, ids)
        return WeightsPage(items=_stat_items(run, rows, priors, predicted), next_cursor=None)

    after = _decode_cursor(cursor)
    page = stats_store.stats_page(session, run.id, run.dataset_id, after, limit)
    rows = [(r[1], r[2], r[3], r[4], r[5]) for r in page]
    next_cursor = str(page[-1][0]) if len(page) == limit else None
    ids = [int(r[0]) for r in page]
    items = _stat_items(run, rows, _priors_of(uow, run, ids), _predicted(uow, run, registry, ids))
    return WeightsPage(items=items, next_cursor=next_cursor)


def unknown_problem_ids(unknown: list[str]) -> InvalidItems:
    """A weights query naming problems the run's dataset does not have (the first 1,000)."""
    return InvalidItems("problem_ids", "unknown problem id(s)", items=unknown[:1000])


def _decode_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        value = int(cursor)
    except ValueError:
        raise InvalidItems("cursor", "invalid cursor: pass back next_cursor unchanged") from None
    if value < 0:
        raise InvalidItems("cursor", "invalid cursor: pass back next_cursor unchanged")
    return value


def rng_for(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(None if seed is None else seed % 2**64)


def draw_or_conflict(
    entry: RunIndex,
    size: int,
    seed: int | None,
    mode: draws.Mode,
    fill: draws.FillPolicy = "none",
    exclude: np.ndarray | None = None,
    *,
    epsilon: float = 0.0,
    draw_key: str | None = None,
) -> draws.Draw:
    """The batch's problems; 409 when there are none (without a fill: none is eligible).
    A Thompson or epsilon batch draws from (seed, draw key, the index's run version)."""
    exploring = mode == "thompson" or epsilon > 0
    with entry.lock:
        rng = draw_rng(seed, draw_key, entry.version) if exploring else rng_for(seed)
        result = draws.draw(
            entry.index, size, rng, mode, fill=fill, exclude=exclude, epsilon=epsilon
        )
        n_seen = entry.index.n_seen
    if len(result.problem_ids) == 0:
        why = _why_nothing_eligible(n_seen, mode)
        if exclude is not None and len(exclude):
            why += " (problems under a rollout lease were skipped: skip_leased)"
        raise Conflict(why)
    return result


def batch_items(result: draws.Draw, texts: list[Text]) -> dict[str, Any]:
    """The response body; `source` and `sources` only when a fill policy was asked for."""
    body = _batch_items(result, texts)
    if result.sources is not None:
        names = draws.source_names(result)
        for item, name in zip(body["items"], names, strict=True):
            item["source"] = name
        body["sources"] = draws.source_counts(result)
    return body


def batch_columns(result: draws.Draw, texts: list[Text]) -> dict[str, Any]:
    """The same batch as batch_items, one list per field (the columnar format a client asks
    for by Accept): no per-item dict on either side, and each key sent once."""
    ids, prompts, answers = (
        (list(column) for column in zip(*texts, strict=True)) if texts else ([], [], [])
    )
    columns: dict[str, list[Any]] = {
        "problem_id": ids,
        "prompt": prompts,
        "answer": answers,
        "pass_rate": [None if p != p else p for p in result.pass_rates.tolist()],  # NaN -> None
        "weight": result.weights.tolist(),
        "loss_weight": result.loss_weights.tolist(),
    }
    body: dict[str, Any] = {"columns": columns, "available": int(result.available)}
    if result.sources is not None:
        columns["source"] = draws.source_names(result)
        body["sources"] = draws.source_counts(result)
    return body


def columns_of(body: dict[str, Any]) -> dict[str, Any]:
    """A batch_items body in the columnar format (for draws served from a stored pin)."""
    items = body["items"]
    fields = ["problem_id", "prompt", "answer", "pass_rate", "weight", "loss_weight"]
    if "sources" in body:
        fields.append("source")
    columns = {name: [item[name] for item in items] for name in fields}
    out = {"columns": columns, "available": body["available"]}
    if "sources" in body:
        out["sources"] = body["sources"]
    return out


def _batch_items(result: draws.Draw, texts: list[Text]) -> dict[str, Any]:
    # .tolist() gives plain Python numbers: far cheaper to handle than numpy scalars.
    pass_rates = [None if p != p else p for p in result.pass_rates.tolist()]  # NaN -> None
    items = [
        {
            "problem_id": text[0],
            "prompt": text[1],
            "answer": text[2],
            "pass_rate": p,
            "weight": w,
            "loss_weight": lw,
        }
        for text, p, w, lw in zip(
            texts, pass_rates, result.weights.tolist(), result.loss_weights.tolist(), strict=True
        )
    ]
    return {"items": items, "available": int(result.available)}


def _why_nothing_eligible(n_seen: int, mode: str) -> str:
    if n_seen == 0:
        return "no problem is eligible: no outcomes have been posted for this run yet"
    if mode == "proportional":
        return (
            "no problem is eligible: every problem with outcomes is mastered (p=1) or "
            "intractable (p=0), so every weight is 0; post fresh rollouts or use the "
            "rollout queue"
        )
    return "no problem is eligible: no problem has an estimate yet"


def difficulty(uow: UnitOfWork, run: Run, registry: IndexRegistry, bins: int) -> Difficulty:
    entry = registry.get(uow.session, run)
    with entry.lock:
        report = entry.index.difficulty(bins)
    errored = errored_store.of_run(uow.session, run.id)
    return Difficulty.model_validate({**report, "errored_attempts": errored})


def rollout_queue(
    uow: UnitOfWork, run: Run, registry: IndexRegistry, limit: int, stale_after: int | None
) -> RolloutQueue:
    entry = registry.get(uow.session, run)
    with entry.lock:
        queue = entry.index.rollout_queue(
            limit, run.max_step or 0, stale_after_for(run, stale_after)
        )
    return queue_items(uow, queue)


def stale_after_for(run: Run, stale_after: int | None) -> int:
    """The caller's staleness threshold, else the run's half-life (or 50 steps)."""
    if stale_after is not None:
        return stale_after
    half_life = run.estimator.half_life_steps
    return max(1, math.ceil(half_life)) if half_life else 50


def queue_items(uow: UnitOfWork, queue: list[tuple[int, str]]) -> RolloutQueue:
    problems = dataset_store.problems_by_ids(uow.session, [pid for pid, _ in queue])
    items = []
    for pid, reason in queue:
        ext, prompt, answer = problems[pid]
        # The index's reasons are summaries.QueueReason (its return type says str).
        why = cast(QueueReason, reason)
        items.append(QueueItem(problem_id=ext, prompt=prompt, answer=answer, reason=why))
    return RolloutQueue(items=items)

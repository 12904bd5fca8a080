"""The service's endpoints as I/O-free Calls: what each method of the twins sends, how it
is retried (RetryMode) and how its JSON answer is parsed. The `api_*` builders turn method
arguments into Calls, including chunking and idempotency keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _call, models
from ._batch_call import FILL_POLICIES as FILL_POLICIES
from ._batch_call import MODES as MODES
from ._batch_call import api_batch as api_batch
from ._call import Call as Call  # the twins and _base reach Call through this module
from ._call import _chunks, _items, _seg, _without_none
from ._call import parse_response as parse_response
from ._call import sum_accepted as sum_accepted  # the twins add up chunked answers
from ._call import sum_upserts as sum_upserts
from ._outcome_rules import _checked_outcomes
from ._retry import RetryMode
from .limits import DEFAULT_LIMITS, Limits
from .priors import api_copy_priors as api_copy_priors
from .priors import api_set_priors as api_set_priors

# The service's default per-request limit (trainer_client/limits.py): the client splits
# longer lists.
MAX_ITEMS_PER_REQUEST = DEFAULT_LIMITS.max_items_per_request


# ---- the API, one builder per endpoint ---------------------------------------------------------


def api_health() -> Call[models.Health]:
    return Call("GET", "/healthz", models.Health.model_validate)


def api_limits() -> Call[Limits]:
    # The service states its configured limits in its OpenAPI document.
    return Call("GET", "/openapi.json", Limits.from_openapi)


def api_list_datasets() -> Call[list[models.Dataset]]:
    return Call("GET", "/v1/datasets", _items(models.Dataset))


def api_create_dataset(
    name: str, description: str | None, exist_ok: bool = False
) -> Call[models.Dataset]:
    body = _without_none({"name": name, "description": description})
    read = _call.created_or_found(models.Dataset.model_validate, "dataset", name, exist_ok)
    retry = _call.create_retry(exist_ok)
    return Call(
        "POST",
        "/v1/datasets",
        models.Dataset.model_validate,
        json=body,
        retry=retry,
        parse_bytes=read,
    )


def api_get_dataset(name: str) -> Call[models.Dataset]:
    return Call("GET", f"/v1/datasets/{_seg(name)}", models.Dataset.model_validate)


def api_upsert_problems(
    dataset: str, problems: Iterable[models.Problem | Mapping[str, Any]], chunk_size: int
) -> list[Call[models.UpsertResult]]:
    """One call per chunk; every item is validated (ids unique) before anything is sent."""
    checked = [models.Problem.model_validate(p) for p in problems]
    _call.repeated_ids(p.id for p in checked)
    path = f"/v1/datasets/{_seg(dataset)}/problems"
    return [
        Call(
            "POST",
            path,
            models.UpsertResult.model_validate,
            json={"problems": [p.model_dump(mode="json", exclude_none=True) for p in chunk]},
            retry=RetryMode.UNSAFE,
        )
        for chunk in _chunks(checked, chunk_size)
    ]


def api_get_problem(dataset: str, problem_id: str) -> Call[models.Problem]:
    path = f"/v1/datasets/{_seg(dataset)}/problems/{_seg(problem_id)}"
    return Call("GET", path, models.Problem.model_validate)


def api_list_runs() -> Call[list[models.Run]]:
    return Call("GET", "/v1/runs", _items(models.Run))


def api_create_run(
    name: str,
    dataset: str,
    kernel: models.Kernel | Mapping[str, Any] | None,
    estimator: models.Estimator | Mapping[str, Any] | None,
    exist_ok: bool = False,
) -> Call[models.Run]:
    body: dict[str, Any] = {"name": name, "dataset": dataset}
    # Validated here so a bad alpha fails before a request; omitted means server defaults.
    if kernel is not None:
        body["kernel"] = models.Kernel.model_validate(kernel).model_dump(mode="json")
    if estimator is not None:
        body["estimator"] = _without_none(
            models.Estimator.model_validate(estimator).model_dump(mode="json")
        )
    read = _call.created_or_found(models.Run.model_validate, "run", name, exist_ok)
    retry = _call.create_retry(exist_ok)
    return Call(
        "POST", "/v1/runs", models.Run.model_validate, json=body, retry=retry, parse_bytes=read
    )


def api_get_run(name: str) -> Call[models.Run]:
    return Call("GET", f"/v1/runs/{_seg(name)}", models.Run.model_validate)


def api_post_outcomes(
    run: str,
    outcomes: Iterable[models.Outcome | Mapping[str, Any]],
    idempotency_key: str | None,
    chunk_size: int,
) -> list[Call[models.OutcomesAccepted]]:
    """One KEYED call per chunk, each with its own Idempotency-Key.

    With a caller key and one chunk the key is used as given; with several chunks chunk i gets
    f"{key}-{i}", so calling again with the same key and outcomes replays every chunk safely
    (e.g. after a crash half-way). Without a caller key each chunk gets a fresh uuid4.
    Everything is validated before the first chunk is sent: a bad item must not leave earlier
    chunks applied.
    """
    checked = _checked_outcomes(outcomes)
    chunks = _chunks(checked, chunk_size)
    path = f"/v1/runs/{_seg(run)}/outcomes"
    calls = []
    for index, chunk in enumerate(chunks):
        if idempotency_key is None:
            key = str(uuid.uuid4())
        elif len(chunks) == 1:
            key = idempotency_key
        else:
            key = f"{idempotency_key}-{index}"
        calls.append(
            Call(
                "POST",
                path,
                models.OutcomesAccepted.model_validate,
                json={"outcomes": chunk},
                headers={"Idempotency-Key": key},
                retry=RetryMode.KEYED,
            )
        )
    return calls


def api_get_problem_stats(run: str, problem_id: str) -> Call[models.ProblemStats]:
    path = f"/v1/runs/{_seg(run)}/problems/{_seg(problem_id)}"
    return Call("GET", path, models.ProblemStats.model_validate)


def api_weights(
    run: str,
    problem_ids: Sequence[str] | None,
    cursor: str | None,
    limit: int | None,
) -> Call[models.WeightsPage]:
    body = _without_none(
        {
            "problem_ids": list(problem_ids) if problem_ids is not None else None,
            "cursor": cursor,
            "limit": limit,
        }
    )
    # A read-only query sent as POST (the id list can be long): safe to repeat.
    return Call("POST", f"/v1/runs/{_seg(run)}/weights", models.WeightsPage.model_validate, body)


def api_rollout_queue(
    run: str,
    limit: int | None,
    claimer: str | None = None,
    lease_s: float | None = None,
    skip_leased: bool | None = None,
) -> Call[models.RolloutQueue]:
    if lease_s is not None and claimer is None:
        raise ValueError("lease_s needs a claimer")
    params = _without_none(
        {
            "limit": limit,
            "claimer": claimer,
            "lease_s": lease_s,
            "skip_leased": None if skip_leased is None else str(bool(skip_leased)).lower(),
        }
    )
    # A claim retried after a lost answer claims again; the lost items come back once their
    # lease expires.
    return Call(
        "GET",
        f"/v1/runs/{_seg(run)}/rollout-queue",
        models.RolloutQueue.model_validate,
        params=params,
    )


def api_difficulty(run: str, bins: int) -> Call[models.Difficulty]:
    return Call(
        "GET",
        f"/v1/runs/{_seg(run)}/difficulty",
        models.Difficulty.model_validate,
        params={"bins": bins},
    )


def api_history(run: str) -> Call[models.History]:
    return Call("GET", f"/v1/runs/{_seg(run)}/history", models.History.model_validate)


def api_overview(run: str, bins: int, top: int) -> Call[models.Overview]:
    params = {"bins": bins, "top": top}
    return Call(
        "GET", f"/v1/runs/{_seg(run)}/overview", models.Overview.model_validate, params=params
    )


def api_runs_summary(
    dataset: str | None, name: str | None, rollouts: bool = False
) -> Call[list[models.RunSummary]]:
    params = _without_none({"dataset": dataset, "name": name, "rollouts": rollouts or None})
    return Call("GET", "/v1/runs-summary", _items(models.RunSummary), params=params)


def api_compare(
    runs: Sequence[str], pair: Sequence[str] | None, bins: int, top: int
) -> Call[models.Comparison]:
    params: dict[str, Any] = {"runs": ",".join(runs), "bins": bins, "top": top}
    if pair is not None:
        params["pair"] = ",".join(pair)
    return Call("GET", "/v1/compare", models.Comparison.model_validate, params=params)


def api_problem_history(run: str, problem_id: str) -> Call[models.ProblemHistory]:
    path = f"/v1/runs/{_seg(run)}/problem-history/{_seg(problem_id)}"
    return Call("GET", path, models.ProblemHistory.model_validate)

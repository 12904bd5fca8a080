"""The I/O-free core shared by PacedClient and AsyncPacedClient.

Written once, used by both twins (the way httpx shares one model between Client and
AsyncClient):

- `Call`: what one endpoint sends and how its JSON answer is parsed. The `api_*` builders below
  turn method arguments into Calls, including chunking and idempotency keys.
- `retry_flow`: the retry decision loop as a generator. It yields "sleep this long, then send
  the request" and is sent back what happened (a response or an httpx transport error). The
  sync twin drives it with time.sleep + Client.send, the async twin with anyio.sleep +
  AsyncClient.send, so the policy itself is the same code and is unit-testable without I/O.

Retry rules (why they differ by call):
- SAFE calls (GETs, and POST queries that change nothing: weights, batches) may be repeated
  freely, so every transient failure is retried, 500 included.
- KEYED calls (POST outcomes) always carry an Idempotency-Key fixed when the Call is built, and
  the very same request (same key, same body) is re-sent on every retry: the server answers a
  replay with the first response and applies nothing twice. A 500 is not retried: it is most
  likely deterministic.
- UNSAFE calls (other POSTs) are retried only when the request provably never reached the
  server (connect errors, pool timeouts) or the server said so itself (429, 503).
"""

from __future__ import annotations

import email.utils
import enum
import logging
import random
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from . import models
from .errors import PacedConnectionError, PacedError, error_from_response

T = TypeVar("T")

logger = logging.getLogger("trainer_client")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# Connecting to a healthy service is quick; reads cover large batches and 10k-item ingests.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RETRIES = 5
# The service rejects larger outcome / problem lists; the client splits them.
MAX_ITEMS_PER_REQUEST = 10_000
USER_AGENT = "paced-trainer-client/1"
FILL_POLICIES = ("none", "unseen", "unseen_then_uniform")


class RetryMode(enum.Enum):
    SAFE = "safe"
    KEYED = "keyed"
    UNSAFE = "unsafe"


_RETRY_STATUSES: dict[RetryMode, frozenset[int]] = {
    RetryMode.SAFE: frozenset({429, 500, 502, 503, 504}),
    RetryMode.KEYED: frozenset({429, 502, 503, 504}),
    RetryMode.UNSAFE: frozenset({429, 503}),
}

# Transient network failures. UnsupportedProtocol / LocalProtocolError are caller bugs: never
# retried. For UNSAFE calls only failures before the request was written qualify.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRY_EXCEPTIONS: dict[RetryMode, tuple[type[Exception], ...]] = {
    RetryMode.SAFE: _TRANSIENT,
    RetryMode.KEYED: _TRANSIENT,
    RetryMode.UNSAFE: _NOT_SENT,
}


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter", capped; Retry-After overrides it.

    Retry n (0-based) waits uniform(d/2, d) with d = min(cap, base * 2**n): never zero (so
    retries do not hammer a struggling server) yet spread out (so clients do not retry in
    lockstep). A server's Retry-After is honoured, up to max_retry_after seconds.
    """

    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(
        self, retry_index: int, rng: random.Random, retry_after: float | None = None
    ) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.cap, self.base * 2.0**retry_index)
        return rng.uniform(ceiling / 2.0, ceiling)


def parse_retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/invalid."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


# ---- the retry loop ----------------------------------------------------------------------------

Outcome = httpx.Response | Exception


def retry_flow(
    request: httpx.Request,
    mode: RetryMode,
    max_retries: int,
    backoff: Backoff,
    rng: random.Random,
) -> Generator[float, Outcome, httpx.Response]:
    """Yield the delay before each attempt; receive its outcome; return the success response.

    Raises the PacedError for the last outcome once it is not retryable or retries are spent.
    The caller re-sends the same `request` object, so headers (Idempotency-Key) and body are
    byte-identical on every attempt.
    """
    retries = 0
    outcome = yield 0.0
    while True:
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                return outcome
            retryable = outcome.status_code in _RETRY_STATUSES[mode]
            hint = parse_retry_after(outcome)
            what = str(outcome.status_code)
        else:
            retryable = isinstance(outcome, _RETRY_EXCEPTIONS[mode])
            hint = None
            what = type(outcome).__name__
        if not retryable or retries >= max_retries:
            raise _final_error(request, outcome)
        delay = backoff.delay(retries, rng, hint)
        retries += 1
        logger.warning(
            "%s %s failed (%s); retry %d/%d in %.2fs",
            request.method,
            request.url,
            what,
            retries,
            max_retries,
            delay,
        )
        outcome = yield delay


def _final_error(request: httpx.Request, outcome: Outcome) -> PacedError:
    if isinstance(outcome, httpx.Response):
        return error_from_response(outcome)
    error = PacedConnectionError(
        None, f"{type(outcome).__name__}: {outcome}", request.method, str(request.url)
    )
    error.__cause__ = outcome
    return error


# ---- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange: what to send, how to retry it, how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: RetryMode = RetryMode.SAFE


def build_request(
    http: httpx.Client | httpx.AsyncClient, base_url: str, token: str | None, call: Call[Any]
) -> httpx.Request:
    headers = {"Accept": "application/json", **call.headers}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return http.build_request(
        call.method, base_url + call.path, params=call.params, json=call.json, headers=headers
    )


def parse_response(call: Call[T], response: httpx.Response) -> T:
    try:
        body = response.json()
    except ValueError as exc:
        raise PacedError(
            response.status_code,
            f"response is not JSON: {response.text[:200]!r}",
            response.request.method,
            str(response.request.url),
        ) from exc
    return call.parse(body)


def check_options(max_retries: int, chunk_size: int) -> None:
    """Constructor checks shared by both clients."""
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    if not 1 <= chunk_size <= MAX_ITEMS_PER_REQUEST:
        raise ValueError(f"chunk_size must be in 1..{MAX_ITEMS_PER_REQUEST}")


def normalize_base_url(base_url: str) -> str:
    # A base URL may carry a prefix (a service behind a proxy at /paced); paths start with "/".
    return str(base_url).rstrip("/")


# ---- the API, one builder per endpoint ---------------------------------------------------------


def _seg(value: str) -> str:
    # Names and problem ids are path segments: quote everything, "/" included.
    return quote(str(value), safe="")


def _items(model: type[models.BaseModel]) -> Callable[[Any], list[Any]]:
    return lambda body: [model.model_validate(item) for item in body["items"]]


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    # An empty list gives no chunks: nothing to send, the summed result is all zeros.
    return [items[i : i + size] for i in range(0, len(items), size)]


def api_health() -> Call[models.Health]:
    return Call("GET", "/healthz", models.Health.model_validate)


def api_list_datasets() -> Call[list[models.Dataset]]:
    return Call("GET", "/v1/datasets", _items(models.Dataset))


def api_create_dataset(name: str, description: str | None) -> Call[models.Dataset]:
    body = _without_none({"name": name, "description": description})
    return Call(
        "POST", "/v1/datasets", models.Dataset.model_validate, json=body, retry=RetryMode.UNSAFE
    )


def api_get_dataset(name: str) -> Call[models.Dataset]:
    return Call("GET", f"/v1/datasets/{_seg(name)}", models.Dataset.model_validate)


def api_upsert_problems(
    dataset: str, problems: Iterable[models.Problem | Mapping[str, Any]], chunk_size: int
) -> list[Call[models.UpsertResult]]:
    """One call per chunk; every item is validated before anything is sent."""
    checked = [models.Problem.model_validate(p) for p in problems]
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


def sum_upserts(results: Iterable[models.UpsertResult]) -> models.UpsertResult:
    results = list(results)
    return models.UpsertResult(
        inserted=sum(r.inserted for r in results), updated=sum(r.updated for r in results)
    )


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
) -> Call[models.Run]:
    body: dict[str, Any] = {"name": name, "dataset": dataset}
    # Validated here so a bad alpha fails before a request; omitted means server defaults.
    if kernel is not None:
        body["kernel"] = models.Kernel.model_validate(kernel).model_dump(mode="json")
    if estimator is not None:
        body["estimator"] = models.Estimator.model_validate(estimator).model_dump(mode="json")
    return Call("POST", "/v1/runs", models.Run.model_validate, json=body, retry=RetryMode.UNSAFE)


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
    checked = [models.Outcome.model_validate(o) for o in outcomes]
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
                json={"outcomes": [o.model_dump(mode="json") for o in chunk]},
                headers={"Idempotency-Key": key},
                retry=RetryMode.KEYED,
            )
        )
    return calls


def sum_accepted(results: Iterable[models.OutcomesAccepted]) -> models.OutcomesAccepted:
    return models.OutcomesAccepted(accepted=sum(r.accepted for r in results))


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


def api_batch(
    run: str,
    size: int,
    seed: int | None,
    mode: str,
    fill: str | None = None,
    draw_key: str | None = None,
    lease: models.Lease | Mapping[str, Any] | None = None,
    skip_leased: bool | None = None,
) -> Call[models.Batch]:
    if mode not in ("proportional", "uniform"):
        raise ValueError(f"mode must be 'proportional' or 'uniform', not {mode!r}")
    if fill is not None and fill not in FILL_POLICIES:
        raise ValueError(f"fill must be one of {FILL_POLICIES}, not {fill!r}")
    checked = None if lease is None else models.Lease.model_validate(lease)
    if checked is not None and draw_key is None:
        # A leased draw changes run state: a fixed key makes a retry after a lost answer
        # replay the same batch instead of leasing a second one.
        draw_key = f"lease-{uuid.uuid4()}"
    body = _without_none(
        {
            "size": size,
            "seed": seed,
            "mode": mode,
            "fill": fill,
            "draw_key": draw_key,
            "lease": None if checked is None else checked.model_dump(mode="json"),
            "skip_leased": skip_leased,
        }
    )
    # A plain draw changes no run state (a lost answer is just drawn again); a pinned one
    # answers a repeat with the stored batch.
    return Call("POST", f"/v1/runs/{_seg(run)}/batches", models.Batch.model_validate, body)


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


def api_runs_summary(dataset: str | None, name: str | None) -> Call[list[models.RunSummary]]:
    params = _without_none({"dataset": dataset, "name": name})
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

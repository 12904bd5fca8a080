"""AsyncPacedClient: the asyncio/trio twin of PacedClient (same methods, awaited).

    async with AsyncPacedClient("http://127.0.0.1:8000") as paced:
        batch = await paced.batch("run-1", size=64, seed=step)

Options and request building (`_base`), the retry policy (`_retry`) and the endpoints
(`_endpoints`) are shared with PacedClient; this module only drives them with non-blocking I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import httpx
from anyio import sleep as _sleep

from . import _endpoints as core
from . import models
from ._base import BaseClient
from ._retry import Outcome
from .limits import ITER_WEIGHTS_PAGE, Limits
from .priors import AsyncPriorMethods

T = TypeVar("T")


class AsyncPacedClient(AsyncPriorMethods, BaseClient[httpx.AsyncClient]):
    """Typed async client; one coroutine per endpoint, as PacedClient.

    Pass `transport=` (e.g. httpx.MockTransport) or a ready `http_client=` for advanced use;
    a client passed in is not closed by close(). `backoff` sets the exponential backoff;
    `max_retries` counts retries after the first attempt.
    """

    _http_class = httpx.AsyncClient

    # ---- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPacedClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- the one place that does I/O ---------------------------------------------------------

    async def _request(self, call: core.Call[T]) -> T:
        request, flow = self._prepare(call)
        delay = next(flow)
        while True:
            if delay > 0:
                await _sleep(delay)
            outcome: Outcome
            try:
                outcome = await self._http.send(request)
            except httpx.TransportError as exc:
                outcome = exc
            try:
                delay = flow.send(outcome)
            except StopIteration as done:
                return core.parse_response(call, done.value)

    # ---- service -----------------------------------------------------------------------------

    async def health(self) -> models.Health:
        return await self._request(core.api_health())

    async def limits(self) -> Limits:
        """The service's request limits (read once from its OpenAPI document, then kept)."""
        if self._limits is None:
            self._limits = await self._request(core.api_limits())
        return self._limits

    # ---- datasets ----------------------------------------------------------------------------

    async def list_datasets(self) -> list[models.Dataset]:
        return await self._request(core.api_list_datasets())

    async def create_dataset(
        self, name: str, description: str | None = None, *, exist_ok: bool = False
    ) -> models.Dataset:
        """Create a dataset. exist_ok: get the dataset of this name if it has this
        description (a re-run setup script); otherwise an existing one is a Conflict."""
        return await self._request(core.api_create_dataset(name, description, exist_ok))

    async def get_dataset(self, name: str) -> models.Dataset:
        return await self._request(core.api_get_dataset(name))

    async def upsert_problems(
        self, dataset: str, problems: Iterable[models.Problem | Mapping[str, Any]]
    ) -> models.UpsertResult:
        """Upsert by id; lists over the request limit go in several requests (each atomic)."""
        calls = core.api_upsert_problems(dataset, problems, self._chunk_size)
        return core.sum_upserts([await self._request(call) for call in calls])

    async def get_problem(self, dataset: str, problem_id: str) -> models.Problem:
        return await self._request(core.api_get_problem(dataset, problem_id))

    # ---- runs --------------------------------------------------------------------------------

    async def list_runs(self) -> list[models.Run]:
        return await self._request(core.api_list_runs())

    async def create_run(
        self,
        name: str,
        dataset: str,
        kernel: models.Kernel | Mapping[str, Any] | None = None,
        estimator: models.Estimator | Mapping[str, Any] | None = None,
        *,
        exist_ok: bool = False,
    ) -> models.Run:
        """Create a run. exist_ok: get the run of this name if its dataset, kernel and
        estimator are these (without its token, shown once at creation); one with other
        settings is a Conflict naming them either way."""
        return await self._request(core.api_create_run(name, dataset, kernel, estimator, exist_ok))

    async def get_run(self, name: str) -> models.Run:
        return await self._request(core.api_get_run(name))

    async def post_outcomes(
        self,
        run: str,
        outcomes: Iterable[models.Outcome | Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> models.OutcomesAccepted:
        """Report graded rollouts. Retries never double-count (see _endpoints.api_post_outcomes)."""
        calls = core.api_post_outcomes(run, outcomes, idempotency_key, self._chunk_size)
        return core.sum_accepted([await self._request(call) for call in calls])

    async def get_problem_stats(self, run: str, problem_id: str) -> models.ProblemStats:
        return await self._request(core.api_get_problem_stats(run, problem_id))

    async def weights(
        self,
        run: str,
        problem_ids: Sequence[str] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> models.WeightsPage:
        return await self._request(core.api_weights(run, problem_ids, cursor, limit))

    async def iter_weights(
        self, run: str, limit: int | None = ITER_WEIGHTS_PAGE
    ) -> AsyncIterator[models.WeightItem]:
        """Every problem's weight, following next_cursor page by page (`async for`), in
        pages of ITER_WEIGHTS_PAGE by default (PacedClient.iter_weights says why)."""
        cursor: str | None = None
        while True:
            page = await self.weights(run, cursor=cursor, limit=limit)
            for item in page.items:
                yield item
            if page.next_cursor in (None, "") or not page.items:
                return
            cursor = page.next_cursor

    async def batch(
        self,
        run: str,
        size: int,
        seed: int | None = None,
        mode: Literal["proportional", "uniform", "thompson"] = "proportional",
        *,
        fill: Literal["none", "unseen", "unseen_then_uniform"] | None = None,
        draw_key: str | None = None,
        lease: models.Lease | Mapping[str, Any] | None = None,
        skip_leased: bool | None = None,
        epsilon: float | None = None,
    ) -> models.Batch:
        """Draw a batch. fill tops it up to `size`; draw_key pins it; lease claims it for a
        claimer; skip_leased skips leased problems; mode thompson, epsilon: see api_batch."""
        call = core.api_batch(run, size, seed, mode, fill, draw_key, lease, skip_leased, epsilon)
        return await self._request(call)

    async def rollout_queue(
        self,
        run: str,
        limit: int | None = None,
        *,
        claimer: str | None = None,
        lease_s: float | None = None,
        skip_leased: bool | None = None,
    ) -> models.RolloutQueue:
        """Problems that most need rollouts. With a claimer they are leased to it: no other
        claimer gets them until their outcomes arrive or lease_s passes."""
        call = core.api_rollout_queue(run, limit, claimer, lease_s, skip_leased)
        return await self._request(call)

    async def difficulty(self, run: str, bins: int = 10) -> models.Difficulty:
        return await self._request(core.api_difficulty(run, bins))

    async def history(self, run: str) -> models.History:
        return await self._request(core.api_history(run))

    async def overview(self, run: str, bins: int = 20, top: int = 10) -> models.Overview:
        """The run's settings, difficulty, `top` frontier problems (with their prompts, pass
        rates and weights) and `top` recently mastered ones."""
        return await self._request(core.api_overview(run, bins, top))

    # ---- across runs -------------------------------------------------------------------------

    async def runs_summary(
        self, dataset: str | None = None, name: str | None = None, rollouts: bool = False
    ) -> list[models.RunSummary]:
        """Every run with its newest history snapshot; `name` is a glob such as "paced-s*";
        rollouts: also each run's graded and errored attempts (a scan of its rows)."""
        return await self._request(core.api_runs_summary(dataset, name, rollouts))

    async def compare(
        self,
        runs: Sequence[str],
        pair: Sequence[str] | None = None,
        bins: int = 20,
        top: int = 20,
    ) -> models.Comparison:
        """2 to 8 runs of one dataset side by side, and the `top` problems whose pass rates
        differ most between `pair` (default: the first two runs)."""
        return await self._request(core.api_compare(runs, pair, bins, top))

    async def problem_history(self, run: str, problem_id: str) -> models.ProblemHistory:
        """One problem of a run: its text, current stats and outcomes summed per step."""
        return await self._request(core.api_problem_history(run, problem_id))

"""Per-problem priors (POST /v1/runs/{run}/priors and /priors/copy): the request and answer
models and the I/O-free Calls the twins send (re-exported by _endpoints).

A prior is a pass rate worth `pseudo_attempts` attempts: the service adds the pseudo-counts
(pseudo_attempts, pseudo_attempts x pass_rate) to the problem's counts in every estimate.
Files (CSV, JSONL, parquet) are read by `paced priors` (trainer_client/cli/priors.py,
read_profile), which then sends the items through these calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ConfigDict, Field

from ._call import Call, _chunks, _seg, _without_none, repeated_ids
from ._retry import RetryMode
from .models import _Model

T = TypeVar("T")


class PriorItem(_Model):
    """One problem's prior: a pass rate (e.g. a reference model's) and what it is worth."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    problem_id: str = Field(min_length=1, max_length=256)
    pass_rate: float = Field(ge=0, le=1)
    pseudo_attempts: float = Field(gt=0)


class PriorsSet(_Model):
    updated: int
    problems_with_prior: int


def api_set_priors(
    run: str,
    items: Iterable[PriorItem | Mapping[str, Any]],
    max_pseudo_attempts: float | None,
    replace: bool,
    chunk_size: int,
) -> list[Call[PriorsSet]]:
    """One call per chunk, all validated (ids unique) before any is sent. With `replace`, only
    the first chunk replaces: the later ones add to what it left."""
    checked = [PriorItem.model_validate(item) for item in items]
    repeated_ids(item.problem_id for item in checked)
    chunks = _chunks(checked, chunk_size) or [[]]  # replace with no items: one call clears
    path = f"/v1/runs/{_seg(run)}/priors"
    calls = []
    for index, chunk in enumerate(chunks):
        body = {
            "items": [item.model_dump(mode="json", exclude_none=True) for item in chunk],
            **_without_none({"max_pseudo_attempts": max_pseudo_attempts}),
        }
        if replace and index == 0:
            body["replace"] = True
        # Absolute values: a repeat writes the same priors, so transient failures are retried
        # (not a 500, as for keyed posts).
        calls.append(Call("POST", path, PriorsSet.model_validate, json=body, retry=RetryMode.KEYED))
    return calls


def api_copy_priors(
    run: str, from_run: str, max_pseudo_attempts: float | None, replace: bool
) -> Call[PriorsSet]:
    body: dict[str, Any] = {"from_run": from_run}
    body.update(_without_none({"max_pseudo_attempts": max_pseudo_attempts}))
    if replace:
        body["replace"] = True
    path = f"/v1/runs/{_seg(run)}/priors/copy"
    return Call("POST", path, PriorsSet.model_validate, json=body, retry=RetryMode.KEYED)


def sum_priors(results: Iterable[PriorsSet]) -> PriorsSet:
    """Chunked uploads: the problems each set, and the run's count after the last."""
    results = list(results)
    return PriorsSet(
        updated=sum(r.updated for r in results),
        problems_with_prior=results[-1].problems_with_prior if results else 0,
    )


class PriorMethods:
    """PacedClient's priors methods (a mixin, so that the client class stays one room)."""

    _chunk_size: int
    if TYPE_CHECKING:

        def _request(self, call: Call[T]) -> T: ...

    def set_priors(
        self,
        run: str,
        items: Iterable[PriorItem | Mapping[str, Any]],
        *,
        max_pseudo_attempts: float | None = None,
        replace: bool = False,
    ) -> PriorsSet:
        """Per-problem priors (a pass rate worth pseudo_attempts attempts each), added to the
        problems' counts by every estimate; replace drops the run's other priors. From a
        file: trainer_client.cli.priors.read_profile (CSV, JSONL, parquet)."""
        calls = api_set_priors(run, items, max_pseudo_attempts, replace, self._chunk_size)
        return sum_priors([self._request(call) for call in calls])

    def copy_priors(
        self,
        run: str,
        from_run: str,
        *,
        max_pseudo_attempts: float | None = None,
        replace: bool = False,
    ) -> PriorsSet:
        """Start `run` from `from_run`'s current estimates, each worth at most
        max_pseudo_attempts (the service's default: 8) attempts. Needs the admin token."""
        return self._request(api_copy_priors(run, from_run, max_pseudo_attempts, replace))


class AsyncPriorMethods:
    """AsyncPacedClient's priors methods: PriorMethods, awaited."""

    _chunk_size: int
    if TYPE_CHECKING:

        async def _request(self, call: Call[T]) -> T: ...

    async def set_priors(
        self,
        run: str,
        items: Iterable[PriorItem | Mapping[str, Any]],
        *,
        max_pseudo_attempts: float | None = None,
        replace: bool = False,
    ) -> PriorsSet:
        """See PriorMethods.set_priors."""
        calls = api_set_priors(run, items, max_pseudo_attempts, replace, self._chunk_size)
        return sum_priors([await self._request(call) for call in calls])

    async def copy_priors(
        self,
        run: str,
        from_run: str,
        *,
        max_pseudo_attempts: float | None = None,
        replace: bool = False,
    ) -> PriorsSet:
        """See PriorMethods.copy_priors."""
        return await self._request(api_copy_priors(run, from_run, max_pseudo_attempts, replace))

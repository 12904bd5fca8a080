"""Problem texts as the dashboard tables show them: the prompt cut to a preview length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from service.db import UnitOfWork
from service.store import datasets as dataset_store

# Long enough for a typical math prompt to arrive whole (the tables show it on hover), short
# enough that a dataset of 100 KB prompts cannot swell a dashboard poll. The problem page
# (/v1/runs/{run}/problem-history/{id}) returns the whole prompt.
PROMPT_PREVIEW_CHARS = 2000


class Preview(TypedDict):
    """The text fields of a table row (reports.ProblemSummary, reports.Difference)."""

    problem_id: str
    prompt: str
    prompt_truncated: bool
    answer: str | None


def preview(problem_id: str, prompt: str, answer: str | None) -> Preview:
    truncated = len(prompt) > PROMPT_PREVIEW_CHARS
    return Preview(
        problem_id=problem_id,
        prompt=prompt[:PROMPT_PREVIEW_CHARS] if truncated else prompt,
        prompt_truncated=truncated,
        answer=answer,
    )


def previews(uow: UnitOfWork, ids: Sequence[int]) -> dict[int, Preview]:
    """Each problem's preview by internal id, in one read; a problem deleted since its
    numbers were copied out of the index shows as "?"."""
    texts = dataset_store.problems_by_ids(uow.session, ids)
    return {pid: preview(*texts.get(pid, ("?", "", None))) for pid in ids}

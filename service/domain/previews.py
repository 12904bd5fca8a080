"""Problem texts as the dashboard tables show them: the prompt cut to a preview length."""

from __future__ import annotations

from typing import TypedDict

# Long enough for a typical math prompt to arrive whole (the tables show it on hover), short
# enough that a dataset of 100 KB prompts cannot swell a dashboard poll. The problem page
# (/v1/runs/{run}/problem-history/{id}) returns the whole prompt.
PROMPT_PREVIEW_CHARS = 2000

# (external id, prompt, answer), as store.datasets.problems_by_ids reads them; what a table
# shows for a problem deleted since its numbers were copied out of the index.
ProblemText = tuple[str, str, str | None]
MISSING_TEXT: ProblemText = ("?", "", None)


class PreviewFields(TypedDict):
    """The text fields of a table row (reports.ProblemSummary, reports.Difference)."""

    prompt: str
    prompt_truncated: bool
    answer: str | None


def text_fields(prompt: str, answer: str | None) -> PreviewFields:
    truncated = len(prompt) > PROMPT_PREVIEW_CHARS
    return PreviewFields(
        prompt=prompt[:PROMPT_PREVIEW_CHARS] if truncated else prompt,
        prompt_truncated=truncated,
        answer=answer,
    )

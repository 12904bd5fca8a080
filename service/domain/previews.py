"""Problem texts as the dashboard tables show them: the prompt cut to a preview length."""

from __future__ import annotations

from typing import Any

# Long enough for a typical math prompt to arrive whole (the tables show it on hover), short
# enough that a dataset of 100 KB prompts cannot swell a dashboard poll. The problem page
# (/v1/runs/{run}/problem-history/{id}) returns the whole prompt.
PROMPT_PREVIEW_CHARS = 2000


def text_fields(prompt: str, answer: str | None) -> dict[str, Any]:
    truncated = len(prompt) > PROMPT_PREVIEW_CHARS
    return {
        "prompt": prompt[:PROMPT_PREVIEW_CHARS] if truncated else prompt,
        "prompt_truncated": truncated,
        "answer": answer,
    }

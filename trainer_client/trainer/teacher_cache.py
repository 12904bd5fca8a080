"""Teacher reference responses: generated once (greedy) for the whole pool, cached on disk.

Forward KL trains on the teacher's own responses, which do not change while the teacher is
frozen; regenerating them for every run would cost a full-pool generation each time. The
cache key covers everything the responses depend on: the teacher's weights, the pool's ids
and prompts, and the generation budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from trainer_client.trainer.engines.base import RolloutEngine


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over parameter names and bytes (cheap for the small models this is used with)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def pool_fingerprint(problems: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(f"{problem.id}\x00{problem.prompt}\x01".encode())
    return digest.hexdigest()[:16]


def teacher_references(
    engine: RolloutEngine,
    problems: Sequence[Any],
    cache_dir: Path,
    *,
    teacher_key: str,
    max_new_tokens: int,
    chunk: int = 256,
) -> dict[str, list[int]]:
    """problem id -> the teacher's greedy response token ids (ending with eos when it stopped)."""
    key = f"{teacher_key}-{pool_fingerprint(problems)}-{max_new_tokens}"
    path = Path(cache_dir) / f"teacher-refs-{key}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    references: dict[str, list[int]] = {}
    progress = tqdm(
        total=len(problems), desc="teacher references", unit="problem", leave=False, disable=None
    )
    # Similar prompt lengths together: less padding per generate() call.
    ordered = sorted(problems, key=lambda p: len(p.prompt))
    for start in range(0, len(ordered), chunk):
        part = ordered[start : start + chunk]
        groups = engine.generate(
            [p.prompt for p in part], 1, seed=0, max_new_tokens=max_new_tokens, temperature=0.0
        )
        for problem, group in zip(part, groups, strict=True):
            references[problem.id] = list(group[0].token_ids)
        progress.update(len(part))
    progress.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(references), encoding="utf-8")
    tmp.replace(path)
    return references

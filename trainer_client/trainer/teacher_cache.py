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
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from trainer_client.trainer.engines.base import RolloutEngine

if TYPE_CHECKING:
    from trainer_client.trainer.accounting import Counters
    from trainer_client.trainer.bundle import TaskBundle
    from trainer_client.trainer.ranks import Ranks


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


def verified_references(
    bundle: TaskBundle,
    teacher_engine: RolloutEngine,
    verifier: Any,
    *,
    ranks: Ranks,
    counters: Counters,
    cache_dir: Path,
    max_new_tokens: int,
) -> tuple[list[Any], dict[str, list[int]]]:
    """(the pool that is trained on, its teacher references): problems whose reference the
    verifier rejects leave the pool (distilling them would teach the teacher's mistake),
    counted. References are generated (and cached) on rank 0 when the task has none."""
    references = bundle.references
    if references is None:
        references = ranks.from_main(
            lambda: teacher_references(
                teacher_engine,
                bundle.pool,
                cache_dir,
                teacher_key=bundle.teacher_key or model_fingerprint(bundle.teacher),
                max_new_tokens=max_new_tokens,
            )
        )
    pool = [p for p in bundle.pool if p.id in references]
    texts = bundle.tokenizer.batch_decode(
        [references[p.id] for p in pool], skip_special_tokens=True
    )
    grades = verifier.grade(texts, [p.answer or "" for p in pool])
    kept = [p for p, ok in zip(pool, grades, strict=True) if ok]
    counters.references_rejected = len(pool) - len(kept)
    counters.references_missing = len(bundle.pool) - len(pool)
    return kept, {p.id: references[p.id] for p in kept}

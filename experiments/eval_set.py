"""A larger held-out evaluation than the task ships, so arms differing by a few points are
not lost in the noise of 20 problems per level.

The task's eval and held-out-skill splits are kept, and fresh problems are added that appear
in none of the task's splits (the splits are rebuilt from the task's recorded config, which
is deterministic). Level 1 has only 100 distinct problems, all already used, so it gets none.
"""

from __future__ import annotations

from typing import Any

from trainer_client.task.config import TaskConfig
from trainer_client.task.pipeline import splits_of
from trainer_client.task.problems import Problem, make_problems, make_reverse_problems

# Seeds far from the task's own (seed*3+k, seed*2+k) so the draws are independent of them.
_EXTRA_ADD_SEED = 7_919
_EXTRA_REV_SEED = 7_927


def extended_eval(
    task_config: dict[str, Any], extra_per_level: int, extra_heldout: int
) -> tuple[list[Problem], list[Problem]]:
    """(eval problems, held-out-skill problems): the task's own plus fresh, disjoint ones."""
    c = task_config
    splits = splits_of(TaskConfig.from_dict(c))
    if not extra_per_level and not extra_heldout:
        return splits.eval, splits.heldout_eval
    used = {p.id for p in splits.train + splits.pool + splits.eval + splits.dev}
    extra = make_problems(
        c["seed"] + _EXTRA_ADD_SEED, extra_per_level, range(2, c["levels"] + 1), exclude=used
    )
    used_rev = {p.id for p in splits.heldout_train + splits.heldout_eval}
    extra_rev = make_reverse_problems(
        c["seed"] + _EXTRA_REV_SEED, extra_heldout, c["reverse_digits"], exclude=used_rev
    )
    return splits.eval + extra, splits.heldout_eval + extra_rev

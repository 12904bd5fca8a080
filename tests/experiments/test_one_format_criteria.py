"""The one-format experiment's pre-registered verdicts (experiments/criteria.py) on
hand-made records whose answers are known."""

from __future__ import annotations

import pytest

from experiments.criteria import level_auc, one_format_criteria, one_format_markdown


def _record(arm: str, seed: int, level3: list[float], forwards: int = 320) -> dict:
    steps = [0, 25, 50, 75, 100]
    curve = [
        {"step": s, "accuracy": a, "per_level": {"3": a}, "heldout": 0.9}
        for s, a in zip(steps, level3, strict=True)
    ]
    return {
        "arm": arm,
        "seed": seed,
        "config": {"steps": 100},
        "curve": curve,
        "before": curve[0],
        "after": curve[-1],
        "compute": {"teacher_forwards": forwards},
    }


def test_area_under_the_curve_is_the_trapezoid_mean():
    record = _record("uniform", 0, [0.0, 1.0, 1.0, 1.0, 1.0])
    # (0 + 1) / 2 over the first 25 steps, 1 over the other 75: (12.5 + 75) / 100
    assert level_auc(record, "3") == pytest.approx(0.875)


def _runs(shift_per_seed: list[float]) -> list[dict]:
    base = [0.4, 0.6, 0.7, 0.8, 0.9]
    records = []
    for seed, shift in enumerate(shift_per_seed):
        records.append(_record("uniform", seed, base))
        records.append(_record("paced-paper", seed, [base[0]] + [a + shift for a in base[1:]], 160))
    return records


def test_paced_ahead_in_every_seed_meets_both_endpoints():
    results = one_format_criteria(_runs([0.05, 0.06, 0.04, 0.05]), level=3, teacher_accuracy=1.0)
    assert results["primary_step"] == {"met": True, "direction": "ahead"}
    assert results["primary_auc"]["met"]
    assert results["trained_items_per_step"]["paced-paper"] == pytest.approx(1.6)
    assert "+5.0 pts" in one_format_markdown(results)


def test_paced_behind_and_mixed_seeds_are_told_apart():
    behind = one_format_criteria(_runs([-0.05, -0.06, -0.04, -0.05]), level=3, teacher_accuracy=1)
    assert behind["primary_step"] == {"met": False, "direction": "behind"}
    mixed = one_format_criteria(_runs([0.05, -0.05, 0.04, -0.04]), level=3, teacher_accuracy=1)
    assert mixed["primary_step"] == {"met": False, "direction": "undecided"}
    assert not mixed["win_over_hard_filter"]["met"]  # no hard-filter arm: never claimed

"""The pre-registered success criteria of the issue-11 experiment, evaluated on the records.

Written (and documented in docs/results.md) before the results were seen; each returns a
verdict (met / not met) with the figures that decide it. "Frontier level" is the level the
student's warm-up left inside the band (TaskConfig.warmup_band_level, level 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experiments.stats import first_step_reaching, t_interval


def _by_arm_seed(records: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for record in records:
        out.setdefault(record["arm"], {})[record["seed"]] = record
    return out


def _level_at(record: dict[str, Any], level: str, step: int) -> float:
    for point in record["curve"]:
        if point["step"] == step:
            return point["per_level"][level]
    raise KeyError(f"no evaluation at step {step} in {record['arm']}-s{record['seed']}")


def _first_reaching(record: dict[str, Any], level: str, target: float) -> int | None:
    curve = [(point["step"], point["per_level"][level]) for point in record["curve"]]
    return first_step_reaching(curve, target)


def _interval_dict(values: list[float]) -> dict[str, float]:
    interval = t_interval(values)
    return {
        "mean": interval.mean,
        "low": interval.mean - interval.half_width,
        "high": interval.mean + interval.half_width,
        "n": interval.n,
    }


def _excludes_zero(interval: dict[str, float], above: bool = True) -> bool:
    return interval["low"] > 0 if above else interval["high"] < 0


def evaluate_criteria(
    records: Sequence[dict[str, Any]],
    *,
    primary: str,
    reference: str,
    hard_filter: str,
    frontier_level: int,
    teacher_accuracy: float | None,
) -> dict[str, Any]:
    """Every criterion as {"met": bool, ...figures}; missing arms make a criterion unmet."""
    runs = _by_arm_seed(records)
    level = str(frontier_level)
    uniform, paced, hard = runs.get(reference, {}), runs.get(primary, {}), runs.get(hard_filter, {})
    seeds = sorted(set(uniform) & set(paced))
    results: dict[str, Any] = {}

    starts = {s: (r["before"]["accuracy"], r["after"]["accuracy"]) for s, r in uniform.items()}
    results["sanity_uniform_improves"] = {
        "met": bool(starts) and all(after > before for before, after in starts.values()),
        "overall_before_after_per_seed": starts,
    }
    results["sanity_teacher"] = {
        "met": teacher_accuracy is not None and teacher_accuracy >= 0.98,
        "teacher_eval_accuracy": teacher_accuracy,
    }

    if seeds:
        steps = uniform[seeds[0]]["config"]["steps"]
        half = steps // 2
        per_seed = {}
        for seed in seeds:
            target = uniform[seed]["after"]["per_level"][level]
            reached = _first_reaching(paced[seed], level, target)
            per_seed[seed] = {"uniform_final": target, "paced_reaches_at": reached}
        differences = [
            _level_at(paced[s], level, half) - _level_at(uniform[s], level, half) for s in seeds
        ]
        paired = _interval_dict(differences)
        in_half = all(
            v["paced_reaches_at"] is not None and v["paced_reaches_at"] <= half
            for v in per_seed.values()
        )
        results["primary_speed"] = {
            "met": in_half and _excludes_zero(paired),
            "half_steps": half,
            "per_seed": per_seed,
            "reached_within_half_in_every_seed": in_half,
            "paired_difference_at_half": paired,
        }
        drops = {
            arm: [r["before"]["heldout"] - r["after"]["heldout"] for r in group.values()]
            for arm, group in ((primary, paced), (reference, uniform))
        }
        mean_drop = {arm: sum(v) / len(v) for arm, v in drops.items()}
        results["forgetting"] = {
            "met": mean_drop[primary] <= mean_drop[reference],
            "mean_heldout_drop": mean_drop,
        }
    else:
        results["primary_speed"] = {"met": False, "reason": "missing arms"}
        results["forgetting"] = {"met": False, "reason": "missing arms"}

    hard_seeds = sorted(set(hard) & set(paced))
    if hard_seeds:
        diffs = [
            paced[s]["after"]["per_level"][level] - hard[s]["after"]["per_level"][level]
            for s in hard_seeds
        ]
        paired = _interval_dict(diffs)
        results["win_over_hard_filter"] = {"met": _excludes_zero(paired), "paired_final": paired}
    else:
        results["win_over_hard_filter"] = {"met": False, "reason": "missing arms"}
    return results


def criteria_markdown(results: dict[str, Any], primary: str, frontier_level: int) -> str:
    """The verdict table for docs/results.md."""

    def verdict(name: str) -> str:
        return "**met**" if results[name]["met"] else "**not met**"

    lines = ["| criterion | verdict | figures |", "|---|---|---|"]
    uni = results["sanity_uniform_improves"]["overall_before_after_per_seed"]
    lines.append(
        "| sanity: uniform ends above its start in every seed | "
        f"{verdict('sanity_uniform_improves')} | "
        + ", ".join(f"s{s}: {100 * b:.1f}→{100 * a:.1f} %" for s, (b, a) in sorted(uni.items()))
        + " |"
    )
    teacher = results["sanity_teacher"]["teacher_eval_accuracy"]
    lines.append(
        f"| sanity: teacher ≥ 98 % on eval | {verdict('sanity_teacher')} | "
        f"{'-' if teacher is None else f'{100 * teacher:.1f} %'} |"
    )
    primary_result = results["primary_speed"]
    if "per_seed" in primary_result:
        reach = ", ".join(
            f"s{s}: {v['paced_reaches_at'] or 'never'} (target {100 * v['uniform_final']:.1f} %)"
            for s, v in sorted(primary_result["per_seed"].items())
        )
        paired = primary_result["paired_difference_at_half"]
        lines.append(
            f"| primary: {primary} reaches uniform's final L{frontier_level} accuracy within "
            f"{primary_result['half_steps']} steps in every seed, and the paired difference "
            f"there excludes 0 | {verdict('primary_speed')} | step reached: {reach}; "
            f"paired L{frontier_level} difference at step {primary_result['half_steps']}: "
            f"{100 * paired['mean']:+.1f} pts [{100 * paired['low']:+.1f}, "
            f"{100 * paired['high']:+.1f}] |"
        )
        drops = results["forgetting"]["mean_heldout_drop"]
        lines.append(
            f"| forgetting: {primary}'s held-out drop ≤ uniform's | {verdict('forgetting')} | "
            + ", ".join(f"{arm}: {100 * d:.1f} pts" for arm, d in drops.items())
            + " |"
        )
    hard = results["win_over_hard_filter"]
    if "paired_final" in hard:
        p = hard["paired_final"]
        lines.append(
            f"| claim a win over the hard filter (paired final L{frontier_level} interval "
            f"excludes 0) | {verdict('win_over_hard_filter')} | {100 * p['mean']:+.1f} pts "
            f"[{100 * p['low']:+.1f}, {100 * p['high']:+.1f}] |"
        )
    return "\n".join(lines)

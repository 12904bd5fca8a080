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


# ---------------------------------------------------------------------------------------------
# The one-format experiment (issue 29, docs/results/one_format/preregistration.md)
# ---------------------------------------------------------------------------------------------

ONE_FORMAT_STEP = 50  # the early endpoint: before either arm saturates on level 3
ONE_FORMAT_COMPARED = ("paced-paper", "paced-sampled", "paced-reestimate", "hard-filter")


def level_auc(record: dict[str, Any], level: str) -> float:
    """Area under the level's accuracy-vs-step curve (trapezoid over the evaluated steps),
    divided by the steps covered: the mean accuracy over training, in [0, 1]."""
    curve = sorted((point["step"], point["per_level"][level]) for point in record["curve"])
    pairs = zip(curve[:-1], curve[1:], strict=True)
    area = sum((s1 - s0) * (a0 + a1) / 2 for (s0, a0), (s1, a1) in pairs)
    return area / (curve[-1][0] - curve[0][0])


def _direction(interval: dict[str, float]) -> str:
    if interval["n"] < 2:
        return "undecided (one seed)"
    if interval["low"] > 0:
        return "ahead"
    if interval["high"] < 0:
        return "behind"
    return "undecided"


def _paired(
    arm: dict[int, dict[str, Any]], other: dict[int, dict[str, Any]], level: str, step: int
) -> dict[str, Any]:
    seeds = sorted(set(arm) & set(other))
    at_step = [_level_at(arm[s], level, step) - _level_at(other[s], level, step) for s in seeds]
    auc = [level_auc(arm[s], level) - level_auc(other[s], level) for s in seeds]
    step_interval, auc_interval = _interval_dict(at_step), _interval_dict(auc)
    return {
        "seeds": seeds,
        "at_step": {**step_interval, "direction": _direction(step_interval), "per_seed": at_step},
        "auc": {**auc_interval, "direction": _direction(auc_interval), "per_seed": auc},
    }


def one_format_criteria(
    records: Sequence[dict[str, Any]],
    *,
    level: int,
    teacher_accuracy: float | None,
    step: int = ONE_FORMAT_STEP,
    primary: str = "paced-paper",
    reference: str = "uniform",
    hard_filter: str = "hard-filter",
) -> dict[str, Any]:
    """The pre-registered verdicts: every compared arm vs uniform (paired same-seed level
    difference at `step`, and of the area under the level curve), PACED vs the hard filter,
    the sanity checks, forgetting, and each arm's trained items per step."""
    runs = _by_arm_seed(records)
    lvl = str(level)
    uniform = runs.get(reference, {})
    results: dict[str, Any] = {"level": level, "step": step}
    starts = {s: (r["before"]["accuracy"], r["after"]["accuracy"]) for s, r in uniform.items()}
    results["sanity_uniform_improves"] = {
        "met": bool(starts) and all(after > before for before, after in starts.values()),
        "overall_before_after_per_seed": starts,
    }
    results["sanity_teacher"] = {
        "met": teacher_accuracy is not None and teacher_accuracy >= 0.98,
        "teacher_eval_accuracy": teacher_accuracy,
    }
    results["vs_uniform"] = {
        arm: _paired(runs[arm], uniform, lvl, step)
        for arm in ONE_FORMAT_COMPARED
        if arm in runs and uniform
    }
    main = results["vs_uniform"].get(primary)
    results["primary_step"] = {
        "met": bool(main) and main["at_step"]["direction"] == "ahead",
        "direction": main["at_step"]["direction"] if main else "missing arms",
    }
    results["primary_auc"] = {
        "met": bool(main) and main["auc"]["direction"] == "ahead",
        "direction": main["auc"]["direction"] if main else "missing arms",
    }
    if primary in runs and hard_filter in runs:
        versus_hard = _paired(runs[primary], runs[hard_filter], lvl, step)
        results["win_over_hard_filter"] = {
            "met": versus_hard["auc"]["direction"] == "ahead"
            and versus_hard["at_step"]["direction"] != "behind",
            **versus_hard,
        }
    else:
        results["win_over_hard_filter"] = {"met": False, "reason": "missing arms"}
    drops = {
        arm: sum(r["before"]["heldout"] - r["after"]["heldout"] for r in group.values())
        / len(group)
        for arm, group in runs.items()
    }
    results["forgetting"] = {
        "met": primary in drops and reference in drops and drops[primary] <= drops[reference],
        "mean_heldout_drop": drops,
    }
    results["trained_items_per_step"] = {
        arm: sum(r["compute"]["teacher_forwards"] / r["config"]["steps"] for r in group.values())
        / len(group)
        for arm, group in runs.items()
    }
    return results


def _pts(interval: dict[str, Any]) -> str:
    if interval["n"] < 2:
        return f"{100 * interval['mean']:+.1f} pts (n = 1)"
    return (
        f"{100 * interval['mean']:+.1f} pts [{100 * interval['low']:+.1f}, "
        f"{100 * interval['high']:+.1f}] ({interval['direction']})"
    )


def one_format_markdown(results: dict[str, Any]) -> str:
    """The verdict table and the paired differences, for docs/results.md."""

    def verdict(name: str) -> str:
        return "**met**" if results[name]["met"] else "**not met**"

    level, step = results["level"], results["step"]
    uni = results["sanity_uniform_improves"]["overall_before_after_per_seed"]
    teacher = results["sanity_teacher"]["teacher_eval_accuracy"]
    lines = [
        "| criterion | verdict | figures |",
        "|---|---|---|",
        "| sanity: uniform ends above its start (overall) in every seed | "
        f"{verdict('sanity_uniform_improves')} | "
        + ", ".join(f"s{s}: {100 * b:.1f}→{100 * a:.1f} %" for s, (b, a) in sorted(uni.items()))
        + " |",
        f"| sanity: teacher ≥ 98 % on eval | {verdict('sanity_teacher')} | "
        f"{'-' if teacher is None else f'{100 * teacher:.1f} %'} |",
    ]
    main = results["vs_uniform"].get("paced-paper")
    if main:
        lines.append(
            f"| primary: paced-paper − uniform, L{level} at step {step}, interval above 0 | "
            f"{verdict('primary_step')} | {_pts(main['at_step'])} |"
        )
        lines.append(
            f"| co-primary: paced-paper − uniform, area under the L{level} curve, above 0 | "
            f"{verdict('primary_auc')} | {_pts(main['auc'])} |"
        )
    hard = results["win_over_hard_filter"]
    if "auc" in hard:
        lines.append(
            f"| win over the hard filter (AUC above 0, step {step} not below) | "
            f"{verdict('win_over_hard_filter')} | AUC {_pts(hard['auc'])}; step {step} "
            f"{_pts(hard['at_step'])} |"
        )
    drops = results["forgetting"]["mean_heldout_drop"]
    lines.append(
        f"| forgetting: paced-paper's held-out drop ≤ uniform's | {verdict('forgetting')} | "
        + ", ".join(f"{arm}: {100 * d:.1f} pts" for arm, d in drops.items())
        + " |"
    )
    lines += [
        "",
        f"| arm − uniform (paired, same seed) | L{level} at step {step} | area under L{level} "
        "curve | trained items per step |",
        "|---|---|---|---|",
    ]
    per_step = results["trained_items_per_step"]
    for arm, paired in results["vs_uniform"].items():
        lines.append(
            f"| {arm} | {_pts(paired['at_step'])} | {_pts(paired['auc'])} | {per_step[arm]:.1f} |"
        )
    if "uniform" in per_step:
        lines.append(f"| uniform (itself) | - | - | {per_step['uniform']:.1f} |")
    return "\n".join(lines)

"""A run's summary (summary.json) and its plain-text before -> after table (printed by the CLI
and the demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer_client.trainer.accounting import ClientClock, Counters
    from trainer_client.trainer.config import TrainConfig

ZONES = ("unseen", "intractable", "frontier", "mastered")


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def _zone_rows(summary: dict[str, Any]) -> list[str]:
    before = summary.get("zones_before") or {}
    after = summary.get("zones_after") or {}
    rows = [f"{'zone':<12}{'before':>8}{'after':>8}"]
    for zone in ZONES:
        rows.append(f"{zone:<12}{before.get(zone, 0):>8}{after.get(zone, 0):>8}")
    return rows


def _service_line(summary: dict[str, Any]) -> str:
    zones = (summary.get("service_after") or {}).get("zones") or {}
    counts = " ".join(f"{zone} {zones.get(zone, '-')}" for zone in ZONES)
    line = f"the service's own view after training: {counts}"
    agreement = summary.get("service_agreement")
    if agreement:
        line += (
            f"\n  = the fresh estimate on {agreement['equal']}/{agreement['problems']} problems"
            f" (max |service p - fresh p| {agreement['max_abs_diff']:.3f})"
        )
    return line


def _accuracy_rows(summary: dict[str, Any]) -> list[str]:
    before = summary.get("eval_before") or {}
    after = summary.get("eval_after") or {}
    if not before and not after:
        return []
    rows = [f"{'accuracy (greedy)':<22}{'before':>8}{'after':>8}"]
    eval_b, eval_a = before.get("eval", {}), after.get("eval", {})
    levels = sorted(
        set(eval_b.get("per_level", {})) | set(eval_a.get("per_level", {})), key=lambda x: int(x)
    )
    for level in levels:
        b = eval_b.get("per_level", {}).get(level)
        a = eval_a.get("per_level", {}).get(level)
        rows.append(f"{'eval level ' + str(level):<22}{_pct(b):>8}{_pct(a):>8}")
    rows.append(
        f"{'eval overall':<22}{_pct(eval_b.get('accuracy')):>8}{_pct(eval_a.get('accuracy')):>8}"
    )
    held_b, held_a = before.get("heldout", {}), after.get("heldout", {})
    rows.append(
        f"{'held-out skill':<22}{_pct(held_b.get('accuracy')):>8}{_pct(held_a.get('accuracy')):>8}"
    )
    return rows


def format_summary(summary: dict[str, Any]) -> str:
    timings = summary.get("timings", {})
    lines = [
        f"run {summary['run']}: scheme={summary['scheme']} loss={summary['loss']} "
        f"steps={summary['steps']} pool={summary['pool_size']} problems",
        "",
        "student pass-rate zones over the pool (K rollouts each, before -> after):",
        *_zone_rows(summary),
        _service_line(summary),
        "",
        *_accuracy_rows(summary),
        "",
        f"rollouts spent {summary['rollouts_spent']}, teacher forwards "
        f"{summary['teacher_forwards']}, refreshes {summary['refreshes']}, "
        f"409 conflicts {summary['conflicts']}, fallback batches {summary['fallbacks']}",
        f"time: total {timings.get('total_s', 0):.1f} s, estimation "
        f"{timings.get('estimate_s', 0):.1f} s, mean step {timings.get('mean_step_s', 0):.3f} s, "
        f"client calls {timings.get('mean_client_s_per_step', 0) * 1000:.1f} ms/step "
        f"({100 * timings.get('client_share_of_step', 0):.1f}% of step time)",
    ]
    return "\n".join(lines)


def build_summary(
    config: TrainConfig,
    counters: Counters,
    clock: ClientClock,
    *,
    pool_size: int,
    state: dict[str, Any],
    zones_after: dict[str, int] | None,
    eval_after: dict[str, Any] | None,
    service_after: dict[str, Any],
) -> dict[str, Any]:
    """summary.json: the run's before -> after measurements, what it spent, its timings."""
    steps = max(1, counters.steps_run)
    return {
        "run": config.run,
        "scheme": config.scheme,
        "loss": config.loss,
        "steps": config.steps,
        "pool_size": pool_size,
        "zones_before": state.get("zones_before"),
        "zones_after": zones_after,
        "service_before": state.get("service_before"),
        "service_after": service_after,
        "service_agreement": state.get("service_agreement"),
        "eval_before": state.get("eval_before"),
        "eval_after": eval_after,
        "rollouts_spent": counters.rollouts,
        "teacher_forwards": counters.teacher_forwards,
        "conflicts": counters.conflicts,
        "fallbacks": counters.fallbacks,
        "refreshes": counters.refreshes,
        "references_rejected": counters.references_rejected,
        "references_missing": counters.references_missing,
        "timings": {
            "total_s": counters.wall_s,
            "estimate_s": counters.estimate_s,
            "train_compute_s": counters.train_s,
            "mean_step_s": counters.step_s / steps,
            "mean_client_s_per_step": counters.client_s / steps,
            "client_share_of_step": counters.client_s / counters.step_s if counters.step_s else 0.0,
            # requests sent ahead by the prefetch threads, while steps trained (whole run)
            "client_background_s": clock.background_s,
        },
    }

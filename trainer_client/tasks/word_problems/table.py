"""What `make demo-real` prints: graded greedy responses, and the before / after table."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer_client.tasks.word_problems.task import Accuracy
from trainer_client.trainer.engines.lengths import ResponseLengths


@dataclass
class ArmResult:
    """What one arm (PACED or uniform) measured after its steps."""

    accuracy: list[Accuracy] = field(default_factory=list)  # one per eval set
    mean_p: float = float("nan")
    zones: str = ""
    rollouts_per_s: float = float("nan")
    lengths: ResponseLengths | None = None  # of the pool estimate
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    skipped: int = 0
    train_lengths: ResponseLengths | None = None  # on-policy responses sampled in the steps


def show_samples(label: str, results: Sequence[Accuracy], count: int) -> None:
    """A few graded greedy responses, so the grading can be checked by eye."""
    if count <= 0:
        return
    print(f"-- {count} graded greedy responses per eval set ({label}) --")
    for result in results:
        for sample in result.samples[:count]:
            mark = "RIGHT" if sample.correct else "wrong"
            print(f"[{mark}] gold {sample.answer} | {sample.question}")
            print(f"        -> {sample.response.strip()!r}")


def print_table(
    args: argparse.Namespace,
    eval_items: Mapping[str, Sequence[Any]],
    before: ArmResult,
    arms: Mapping[str, ArmResult],
) -> None:
    names = list(arms)
    rows: list[list[str]] = []
    for i, name in enumerate(eval_items):
        n = len(eval_items[name])
        rows.append(
            [f"greedy accuracy, {name}, n={n}", f"{before.accuracy[i].accuracy:.3f}"]
            + [f"{arms[a].accuracy[i].accuracy:.3f}" for a in names]
        )
    for i, name in enumerate(eval_items):
        rows.append(
            [f"greedy tokens/response (cut by budget), {name.split(',')[0]}"]
            + [_lengths(r.accuracy[i].lengths) for r in (before, *arms.values())]
        )
    rows.append(
        [f"pool mean pass rate (K={args.k}, T={args.temperature})", f"{before.mean_p:.3f}"]
        + [f"{arms[a].mean_p:.3f}" for a in names]
    )
    rows.append(["pool zones (intractable/frontier/mastered)", before.zones])
    rows[-1] += [arms[a].zones for a in names]
    rows.append(["pool tokens/response (cut by budget)"])
    rows[-1] += [_lengths(r.lengths) for r in (before, *arms.values())]
    rows.append(["rollouts/s (pool estimate)"])
    rows[-1] += [f"{r.rollouts_per_s:.2f}" for r in (before, *arms.values())]
    rows.append(["seconds per self-distillation step", "-"])
    rows[-1] += [_mean_text(arms[a].step_seconds, ".1f") for a in names]
    rows.append(["mean loss (reverse KL, weighted)", "-"])
    rows[-1] += [_mean_text(arms[a].losses, ".4f") for a in names]
    rows.append(["on-policy tokens/response (cut by budget)", "-"])
    rows[-1] += [_lengths(arms[a].train_lengths) for a in names]
    header = ["metric", "before", *(f"{a} after" for a in names)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("| " + " | ".join(cells) + " |")
    skipped = ", ".join(f"{a} {arms[a].skipped}" for a in names)
    print(
        f"\n{args.steps} steps per arm (skipped, nothing to draw: {skipped}); pool {args.pool}, "
        f"K {args.k}, batch {args.batch_size}, lr {args.lr}, budget {args.max_new_tokens} "
        f"tokens, seed {args.seed}"
    )


def _lengths(lengths: ResponseLengths | None) -> str:
    if lengths is None or not lengths.responses:
        return "-"
    return f"{lengths.mean_tokens:.0f} ({lengths.truncated_fraction:.0%})"


def _mean_text(values: list[float], spec: str) -> str:
    return format(sum(values) / len(values), spec) if values else "-"

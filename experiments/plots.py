"""PNG plots: accuracy vs step per arm, and the service's zone counts vs step per arm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server or in CI
import matplotlib.pyplot as plt
import numpy as np

ZONES = ("intractable", "frontier", "mastered")


def _by_arm(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["arm"], []).append(record)
    return grouped


def _curve_band(runs: list[dict[str, Any]], value) -> tuple[np.ndarray, ...]:
    steps = sorted({p["step"] for p in runs[0]["curve"]})
    table = np.array(
        [[value(next(p for p in r["curve"] if p["step"] == s)) for s in steps] for r in runs]
    )
    return np.array(steps), table.mean(axis=0), table.min(axis=0), table.max(axis=0)


def accuracy_plot(records: Sequence[dict[str, Any]], arms: list[str], path: Path) -> None:
    """Overall eval accuracy, the hardest learnable level, and held-out skill vs step."""
    levels = sorted({lv for r in records for lv in r["after"]["per_level"]}, key=int)
    panels = [
        ("overall eval accuracy", lambda p: p["accuracy"]),
        *[(f"level {lv} accuracy", lambda p, lv=lv: p["per_level"][lv]) for lv in levels[-2:]],
        ("held-out skill accuracy (forgetting)", lambda p: p["heldout"]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    grouped = _by_arm(records)
    for ax, (title, value) in zip(axes[0], panels, strict=True):
        for arm in arms:
            if arm not in grouped:
                continue
            steps, mean, low, high = _curve_band(grouped[arm], value)
            (line,) = ax.plot(steps, 100 * mean, label=arm, marker=".")
            ax.fill_between(steps, 100 * low, 100 * high, color=line.get_color(), alpha=0.12)
        ax.set_title(title)
        ax.set_xlabel("student optimiser step")
        ax.set_ylabel("% (mean over seeds; band: min-max)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def zones_plot(records: Sequence[dict[str, Any]], arms: list[str], path: Path) -> None:
    """The service's zones (from all outcomes posted so far) per arm, mean over seeds."""
    grouped = _by_arm(records)
    present = [arm for arm in arms if arm in grouped]
    columns = min(4, len(present))
    rows = -(-len(present) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False, sharey=True
    )
    for ax, arm in zip(axes.flat, present, strict=False):
        runs = grouped[arm]
        steps = [z["step"] for z in runs[0]["zones"]]
        for zone in ZONES:
            values = np.mean([[z[zone] for z in r["zones"]] for r in runs], axis=0)
            ax.plot(steps, values, label=zone)
        ax.set_title(arm)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("problems in zone")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

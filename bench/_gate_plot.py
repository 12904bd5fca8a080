"""The figure of bench/gate.py: per arm and phase, rollout groups generated per trained group
and the zero-variance share of the generated groups, with the issue's goal lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PHASES = ("early", "middle", "late")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(report["arms"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(arms)
    for index, arm in enumerate(arms):
        phases = report["arms"][arm]
        xs = [p + (index - (len(arms) - 1) / 2) * width for p in range(len(PHASES))]
        left.bar(xs, [phases[p]["generated_per_trained"] for p in PHASES], width, label=arm)
        shares = [100 * phases[p]["zero_variance_share"] for p in PHASES]
        right.bar(xs, shares, width, label=arm)
    left.axhline(1.3, color="green", linestyle="--", linewidth=1, label="goal paced+gate <= 1.3")
    left.axhline(3.0, color="red", linestyle=":", linewidth=1, label="DAPO >= 3")
    right.axhline(25, color="green", linestyle="--", linewidth=1, label="goal paced+gate <= 25 %")
    right.axhline(40, color="red", linestyle=":", linewidth=1, label="uniform >= 40 %")
    left.set_ylabel("rollout groups generated per trained group")
    right.set_ylabel("zero-variance share of generated groups (%)")
    for axis in (left, right):
        axis.set_xticks(range(len(PHASES)), [f"{p} third" for p in PHASES])
        axis.grid(axis="y", alpha=0.3)
    left.legend(fontsize=7, loc="upper left")
    config = report["config"]
    figure.suptitle(
        f"bench/gate.py: {config['groups']} trained groups per arm, {config['size']} per step,"
        f" K={config['k']}, the arithmetic task's student trained by GRPO on CPU",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)

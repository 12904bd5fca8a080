"""experiments/compare.py --quick end to end (real service, real training), plus its statistics.

The quick run checks that every arm completes and that the table, raw JSON and plots are
written with consistent contents; it does not check which arm wins.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.arms import ARMS, QUICK
from experiments.stats import arm_rows, first_step_reaching, t_interval

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_t_interval_matches_the_t_distribution():
    # mean 2, sample sd 1, n 3: half-width t(0.975, 2) / sqrt(3) with t = 4.302653
    interval = t_interval([1.0, 2.0, 3.0])
    assert interval.mean == pytest.approx(2.0)
    assert interval.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert math.isnan(t_interval([0.5]).half_width)  # one seed: no interval, not zero
    assert t_interval([0.4, 0.4, 0.4]).half_width == pytest.approx(0.0)


def test_steps_to_target_ignores_the_starting_point():
    curve = [(0, 0.9), (25, 0.5), (50, 0.7), (75, 0.8)]
    assert first_step_reaching(curve, 0.7) == 50
    assert first_step_reaching(curve, 0.95) is None


def _record(arm: str, seed: int, before: float, after: float, held_before: float, held_after):
    def point(step, acc, held):
        return {"step": step, "accuracy": acc, "per_level": {"1": acc}, "heldout": held}

    compute = {
        "teacher_forwards": 10,
        "student_backward_tokens": 100,
        "estimation_rollouts": 80,
        "on_policy_samples": 0,
        "fallback_batches": 0,
    }
    return {
        "arm": arm,
        "seed": seed,
        "before": point(0, before, held_before),
        "after": point(10, after, held_after),
        "curve": [point(0, before, held_before), point(10, after, held_after)],
        "compute": compute,
        "timings": {"run_wall_s": 1.0},
    }


def test_arm_rows_forgetting_and_target():
    records = [
        _record("uniform", 0, 0.2, 0.5, 0.9, 0.5),
        _record("uniform", 1, 0.2, 0.7, 0.9, 0.7),
        _record("paced", 0, 0.2, 0.4, 0.9, 0.8),
        _record("paced", 1, 0.2, 0.5, 0.9, 0.9),
    ]
    rows = arm_rows(records, reference_arm="uniform")
    assert rows["uniform"]["reach_target"] == pytest.approx(0.6)
    assert rows["uniform"]["steps_to_target"] == 10  # mean curve 0.6 at step 10
    assert rows["paced"]["steps_to_target"] is None  # mean 0.45 never reaches 0.6
    assert rows["uniform"]["forgetting"].mean == pytest.approx(0.3)
    assert rows["paced"]["forgetting"].mean == pytest.approx(0.05)


@pytest.mark.slow
def test_quick_run_writes_table_raw_json_and_plots(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "experiments/compare.py", "--quick"]
    command += ["--workdir", str(tmp_path / "work"), "--out", str(out)]
    command += ["--task-dir", str(tmp_path / "task")]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    raw = sorted((out / "raw").glob("*.json"))
    assert len(raw) == len(ARMS) * len(QUICK.seeds)
    steps = QUICK.base.steps
    for path in raw:
        record = json.loads(path.read_text())
        assert path.stem == f"{record['arm']}-s{record['seed']}"
        curve_steps = [point["step"] for point in record["curve"]]
        assert curve_steps[0] == 0 and curve_steps[-1] == steps
        assert curve_steps == sorted(curve_steps) and len(curve_steps) > 2  # periodic evals
        assert [z["step"] for z in record["zones"]] == list(range(steps))
        compute = record["compute"]
        assert compute["optimizer_steps"] == steps
        assert 0 < compute["teacher_forwards"] <= steps * QUICK.base.batch_size
        # Every arm starts from the task's own estimate (posted, not rolled out again); only
        # the re-estimating arm spends rollouts on estimation during training.
        assert sum(record["zones_before"].values()) > 0
        if ARMS[record["arm"]].get("refresh_size"):
            assert compute["estimation_rollouts"] > 0
        else:
            assert compute["estimation_rollouts"] == 0

    table = (out / "table.md").read_text()
    assert all(f"| {arm} |" in table for arm in ARMS)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["rows"]) == set(ARMS)
    assert set(summary["criteria"]) == {
        "sanity_uniform_improves",
        "sanity_teacher",
        "primary_speed",
        "forgetting",
        "win_over_hard_filter",
    }
    assert "| primary:" in (out / "criteria.md").read_text()
    for png in ("accuracy_vs_step.png", "zones_vs_step.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wall time" in done.stdout

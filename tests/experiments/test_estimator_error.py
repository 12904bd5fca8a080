"""experiments/estimator_error.py: the tee's budgets, the readings' arithmetic, and the
--quick run end to end (real service, real training, every estimator as a run of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.estimator_error import ESTIMATORS
from experiments.estimator_tee import Mirror, in_half, kept_by, reading_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


def _outcome(pid: str, step: int) -> dict:
    return {"problem_id": pid, "attempts": 8, "successes": 3, "step": step}


def test_a_half_budget_keeps_the_initial_estimate_and_a_fixed_half_of_re_estimations():
    ids = [f"p{i}" for i in range(400)]
    half = Mirror("h", 0.5)
    assert kept_by(half, [_outcome(p, 0) for p in ids]) == [_outcome(p, 0) for p in ids]
    kept = kept_by(half, [_outcome(p, 25) for p in ids])
    assert {o["problem_id"] for o in kept} == {p for p in ids if in_half(p)}
    assert 150 < len(kept) < 250  # a hash half, not a prefix
    # the same problems at every step, so both half-budget estimators see the same rounds
    assert kept_by(half, [_outcome(p, 50) for p in ids]) == [
        _outcome(o["problem_id"], 50) for o in kept
    ]
    full = [_outcome(p, 25) for p in ids]
    assert kept_by(Mirror("f", 1.0), full) == full
    with pytest.raises(ValueError):
        kept_by(Mirror("q", 0.25), full)


def test_reading_rows_score_each_estimator_against_the_fresh_rates():
    point = {
        "step": 50,
        "fresh": {"a": 0.0, "b": 0.5, "c": 1.0},
        "estimates": {
            "run-x": {"a": (0.25, 0.1875), "b": (0.5, 0.25), "c": (0.75, 0.1875)},
            "run-y": {"a": (0.0, 0.0), "b": (0.25, 0.1875), "c": (1.0, 0.0)},
        },
    }
    rows = reading_rows(point, {"x": "run-x", "y": "run-y"}, {"a": 1, "b": 1, "c": 2})
    x, y = rows
    assert x["mean_abs_error"] == pytest.approx((0.25 + 0 + 0.25) / 3)
    assert x["per_level"] == {"1": pytest.approx(0.125), "2": pytest.approx(0.25)}
    # x puts 0.375 of its 0.625 total weight on a and c (fresh 0 and 1)
    assert x["draws_at_edge"] == pytest.approx(0.375 / 0.625)
    assert y["mean_abs_error"] == pytest.approx(0.25 / 3)
    assert y["draws_at_edge"] == 0.0


def test_quick_run_feeds_every_estimator_one_trajectory(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["--quick", "--out", str(out), "--work", str(work), "--k-fresh", "8", "--parallel", "1"]
    done = subprocess.run(
        [sys.executable, "experiments/estimator_error.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (record,) = [json.loads(p.read_text()) for p in (out / "raw").glob("seed-*.json")]
    steps = [point["step"] for point in record["points"]]
    assert steps == [0, 6, 12]
    for point in record["points"]:
        assert point["rollouts"] == record["sample"] * 8  # K fresh rollouts per probed problem
        assert set(point["estimates"]) == set(record["runs"].values())
    # Step 0: one round per problem, so every estimator serves the same pass rate.
    initial = record["points"][0]["estimates"]
    rates = [{pid: rate for pid, (rate, _) in rows.items()} for rows in initial.values()]
    assert all(r == rates[0] for r in rates)
    # Budgets: every full-budget estimator got the driver's re-estimations, the half ones less.
    budgets = record["budgets"]
    full = {arm for arm, (_, share) in ESTIMATORS.items() if share == 1.0}
    assert budgets["latest"] > 0
    assert {budgets[arm] for arm in full} == {budgets["latest"]}
    assert budgets["latest-half"] == budgets["predicted-half"] < budgets["latest"]
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["arm"], r["step"]) for r in summary} == {(a, s) for a in ESTIMATORS for s in steps}
    assert (out / "estimators.png").stat().st_size > 0
    assert "predicted-half" in (out / "table.md").read_text()

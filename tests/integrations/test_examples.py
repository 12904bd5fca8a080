"""The runnable examples run end to end (each starts its own service) well within 2 min."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str, steps: int, *extra: str) -> tuple[dict, float]:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, f"examples/{name}", "--steps", str(steps), *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)},
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # The summary is the last JSON object printed (TRL's log lines come before it).
    return json.loads(result.stdout[result.stdout.rindex("\n{") :]), elapsed


@pytest.mark.timeout(150)
def test_grpo_example(tmp_path):
    summary, elapsed = run_example("grpo_with_paced.py", 3)
    assert summary["steps"] == 3 and summary["attempts_posted"] == 3 * 8
    assert elapsed < 120


@pytest.mark.timeout(150)
def test_distillation_example(tmp_path):
    summary, elapsed = run_example("distill_with_paced.py", 3)
    assert summary["steps"] == 3 and summary["zones_before"]["unseen"] == 24
    assert summary["zones_after"]["unseen"] < 24
    assert elapsed < 120


@pytest.mark.timeout(400)
def test_both_examples_run_twice_against_one_service(tmp_path):
    """Setup is get-or-create: a second run of each example against the same running
    service finds its dataset and run instead of dying with a Conflict."""
    from trainer_client.client import PacedClient
    from trainer_client.local.service import local_service

    with local_service(tmp_path / "paced", timeout_s=60) as url:
        for name in ("grpo_with_paced.py", "distill_with_paced.py"):
            for _ in range(2):
                summary, _ = run_example(name, 2, "--url", url)
                assert summary["steps"] == 2
        with PacedClient(url) as paced:
            assert sorted(r.name for r in paced.list_runs()) == ["distill-demo", "grpo-demo"]

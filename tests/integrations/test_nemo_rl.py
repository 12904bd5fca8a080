"""paced's NeMo-RL adapter inside NeMo-RL's MultipleDataloaderWrapper contract and sync GRPO
step as mirrored in tests/integrations/nemo_rl_stub.py (NeMo-RL is not installable here),
with a live service on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from tests.integrations import nemo_rl_stub as nemo
from tests.integrations.live_service import create_run, service_url, stats
from trainer_client.integrations import nemo_rl

__all__ = ["service_url"]  # the fixture: every test runs on each backend
CUSTOM = {"custom_dataloader": "trainer_client.integrations.nemo_rl.paced_dataloader"}
GENERATIONS = 4


def loaders() -> dict:
    """Two tasks: math datums carry a problem_id, code datums are known by task and idx."""
    math_rows = [
        nemo.datum("math", i, f"{i} + 1 =", str(i + 1), problem_id=f"m{i}") for i in range(6)
    ]
    code_rows = [nemo.datum("code", i, f"print({i})", str(i)) for i in range(6)]
    return nemo.dataloaders({"math": math_rows, "code": code_rows}, batch_size=2)


@pytest.fixture
def paced_run(service_url, monkeypatch, request):
    run = f"nemo-{request.node.name}".replace("[", "-").replace("]", "")
    create_run(service_url, run, nemo_rl.problems_of(loaders()))
    monkeypatch.setenv("PACED_URL", service_url)
    monkeypatch.setenv("PACED_RUN", run)
    monkeypatch.setattr(nemo_rl, "_CURRICULA", {})  # a fresh process
    return run


def grade(info: dict, row: int) -> float:
    """Deterministic: NaN (an errored generation) for one row in five, else 0 or 1."""
    digest = int(hashlib.sha256(f"{info['ground_truth']}:{row}".encode()).hexdigest(), 16)
    return math.nan if digest % 5 == 0 else float(digest % 2)


def expected(batches: list[dict]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for batch in batches:
        for row, reward in enumerate(batch["total_reward"].tolist()):
            datum = {name: batch[name][row] for name in ("extra_env_info", "idx", "task_name")}
            tally = counts.setdefault(nemo_rl.datum_problem_id(datum, "problem_id"), [0, 0])
            if not math.isnan(reward):
                tally[0] += 1
                tally[1] += int(reward == 1.0)
    return {pid: (n, k) for pid, (n, k) in counts.items() if n}


def test_each_steps_prompts_come_from_paced_and_every_k_of_n_goes_back(service_url, paced_run):
    loader = nemo.MultipleDataloaderWrapper(4, CUSTOM, loaders())

    def feed_back(repeated, step):
        loader.set_records(nemo_rl.paced_records(repeated, GENERATIONS, step))

    batches = nemo.grpo_steps(loader, 3, GENERATIONS, grade, feed_back)
    for batch in batches:
        ids = [
            nemo_rl.datum_problem_id({k: batch[k][r] for k in batch}, "problem_id")
            for r in range(0, 16, GENERATIONS)
        ]
        assert len(set(ids)) == 4  # a step's problems: four distinct ones
    assert stats(service_url, paced_run) == expected(batches)
    assert any(math.isnan(r) for b in batches for r in b["total_reward"].tolist())
    errored = nemo_rl.curriculum().sender.totals["errored"]
    assert errored == sum(math.isnan(r) for b in batches for r in b["total_reward"].tolist())
    ids = set(stats(service_url, paced_run))  # both tasks' datums, by their two kinds of id
    assert any(i.startswith("m") for i in ids) and any(i.startswith("code/") for i in ids)


def test_a_resumed_run_draws_what_the_first_drew_and_the_records_reset(service_url, paced_run):
    first = nemo.MultipleDataloaderWrapper(4, CUSTOM, loaders())
    first.set_records({"paced_step": 2})
    drawn = next(first)
    assert first.records == {}  # the wrapper's contract: records reach one call only

    nemo_rl._CURRICULA.clear()  # a new process, resumed at step 2
    resumed = nemo.MultipleDataloaderWrapper(4, CUSTOM, loaders())
    resumed.set_records({"paced_step": 2})
    assert next(resumed)["message_log"] == drawn["message_log"]


def test_an_errored_mask_and_a_record_passed_twice(service_url, paced_run):
    batch = nemo.repeat_interleave(next(nemo.MultipleDataloaderWrapper(4, CUSTOM, loaders())), 2)
    batch["total_reward"] = torch.tensor([1.0, 0.0] * 4)
    mask = [False, False, True, False, False, False, False, False]
    nemo_rl.paced_records(batch, 2, 0, errored=mask)
    nemo_rl.paced_records(batch, 2, 0, errored=mask)  # the same records again: counted once
    counts = sorted(stats(service_url, paced_run).values())
    assert counts == [(1, 0), (2, 1), (2, 1), (2, 1)]
    assert nemo_rl.curriculum().sender.totals["errored"] == 1


def test_the_function_needs_the_paced_settings(monkeypatch):
    monkeypatch.delenv("PACED_URL", raising=False)
    monkeypatch.setattr(nemo_rl, "_CURRICULA", {})
    with pytest.raises(ValueError, match="PACED_URL"):
        nemo.MultipleDataloaderWrapper(4, CUSTOM, loaders()).__next__()

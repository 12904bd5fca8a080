"""VLLMEngine pieces that need no vLLM. The engine itself is tested against the real vLLM
(CPU build) in tests/vllm/ (marked `vllm`; `make test-vllm`)."""

from __future__ import annotations

import sys

import pytest

from trainer_client.trainer.engines.base import Completion
from trainer_client.trainer.engines.sampling import repeat_to_k, samples_per_request, spaced_seeds
from trainer_client.trainer.engines.vllm_engine import VLLM_MISSING, VLLMEngine


def test_missing_vllm_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ImportError, match="make vllm-env") as info:
        VLLMEngine("/nonexistent", seed=0)
    assert str(info.value) == VLLM_MISSING


@pytest.mark.parametrize(("num_prompts", "k"), [(1, 1), (5, 1), (4, 8), (7, 3)])
def test_spaced_seeds_never_collide_across_children(num_prompts, k):
    seeds = spaced_seeds(100, num_prompts, k)
    assert seeds[0] == 100 and len(seeds) == num_prompts
    # vLLM gives child j of a request seed + j: all children's seeds must be distinct.
    children = [s + j for s in seeds for j in range(k)]
    assert len(set(children)) == num_prompts * k
    assert children == list(range(100, 100 + num_prompts * k))


def test_spaced_seeds_rejects_bad_k():
    with pytest.raises(ValueError):
        spaced_seeds(0, 3, 0)


def test_greedy_asks_for_one_sample_and_repeats_it():
    # vLLM rejects n > 1 with temperature 0.
    assert samples_per_request(4, 0.0) == 1 and samples_per_request(4, 0.7) == 4
    one = [Completion("12", [3, 4, 1])]
    repeated = repeat_to_k(one, 3)
    assert repeated == [Completion("12", [3, 4, 1])] * 3
    repeated[0].token_ids.append(9)  # copies, not one shared list
    assert repeated[1].token_ids == [3, 4, 1]

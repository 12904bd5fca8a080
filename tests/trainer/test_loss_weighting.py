"""The paper's loss weighting, w(p) * L, moves the student in proportion to the weights: a
batch of low-weight (near-mastered) items must move it less than a batch of frontier items
(issue 11: the earlier w / sum(w) normalisation made every batch a full-size step)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from trainer_client.trainer.distill import build_sequences, distill_loss  # noqa: E402


def _tiny(seed: int):
    config = transformers.Qwen2Config(
        vocab_size=32,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    torch.manual_seed(seed)
    return transformers.Qwen2ForCausalLM(config)


def _step_size(weights: list[float], reduction: str) -> float:
    student, teacher = _tiny(0), _tiny(1)
    before = copy.deepcopy(student.state_dict())
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8], [9, 10]]
    responses = [[11, 12, 13, 14], [15, 16], [17, 18, 19], [20, 21, 22, 23, 24]]
    batch = build_sequences(prompts, responses, 0, torch.device("cpu"))
    loss = distill_loss(student, teacher, batch, torch.tensor(weights), "fkl", reduction=reduction)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    moved = [(student.state_dict()[name] - value).pow(2).sum() for name, value in before.items()]
    return float(torch.stack(moved).sum().sqrt())


@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_low_weight_batch_moves_the_parameters_less(reduction):
    torch.set_num_threads(1)
    near_mastered = _step_size([0.05, 0.05, 0.05, 0.05], reduction)  # p = 0.95: w ~ 0.05
    frontier = _step_size([0.25, 0.25, 0.25, 0.25], reduction)  # p = 0.5: w = 0.25
    zero = _step_size([0.0, 0.0, 0.0, 0.0], reduction)
    assert zero == 0.0
    assert 0.0 < near_mastered < frontier
    # Under plain SGD the step is linear in the loss scale: 5x the weights, 5x the step.
    assert frontier / near_mastered == pytest.approx(5.0, rel=1e-3)

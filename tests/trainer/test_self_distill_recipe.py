"""The self-distillation recipe's own logic: response lengths/truncation and the uniform
baseline's steps on the shared loop, on a tiny in-process model with a scripted engine."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.trainer.test_self_teacher import tiny_model  # noqa: E402
from tests.trainer.test_self_teacher import tokenizer as tokenizer  # noqa: E402,F401
from trainer_client.tasks.word_problems.problems import INSTRUCTION, make_pool  # noqa: E402
from trainer_client.trainer.engines.base import Completion  # noqa: E402
from trainer_client.trainer.engines.lengths import (  # noqa: E402
    LengthRecordingEngine,
    ResponseLengths,
)
from trainer_client.trainer.recipes.self_distill import SelfDistillation, run_steps  # noqa: E402
from trainer_client.trainer.self_teacher import (  # noqa: E402
    frozen_copy,
    student_prompt,
    teacher_prompt,
)

EOS = 1


class ScriptedEngine:
    """Returns the given token ids for every sample and remembers what it was asked."""

    def __init__(self, token_ids: list[int]) -> None:
        self.token_ids = token_ids
        self.prompts: list[str] = []

    def generate(self, prompts, k, *, seed, max_new_tokens, temperature=1.0, top_p=1.0):
        self.prompts.extend(prompts)
        ids = self.token_ids[:max_new_tokens]
        return [[Completion("x", list(ids)) for _ in range(k)] for _ in prompts]

    def load_weights(self, model_or_state_dict):
        pass


def test_response_lengths_count_only_budget_cuts_as_truncated():
    lengths = ResponseLengths()
    lengths.add([5, 6, 7, 8], max_new_tokens=4, eos_ids=[EOS])  # cut at the budget
    lengths.add([5, 6, 7, EOS], max_new_tokens=4, eos_ids=[EOS])  # ended exactly at it
    lengths.add([5, EOS], max_new_tokens=4, eos_ids=[EOS])
    assert (lengths.responses, lengths.tokens, lengths.truncated) == (3, 10, 1)
    assert lengths.truncated_fraction == pytest.approx(1 / 3)
    assert lengths.mean_tokens == pytest.approx(10 / 3)


def test_recording_engine_measures_every_completion_and_resets():
    engine = LengthRecordingEngine(ScriptedEngine([5, 6, 7, 8, 9]), eos_ids=[EOS])
    groups = engine.generate(["a", "b"], 3, seed=0, max_new_tokens=5)
    assert len(groups) == 2 and all(len(g) == 3 for g in groups)
    recorded = engine.take_lengths()
    assert (recorded.responses, recorded.truncated, recorded.tokens) == (6, 6, 30)
    assert engine.take_lengths().responses == 0


def test_the_teacher_sees_exactly_the_students_message_plus_the_answer(tokenizer):  # noqa: F811
    problem = make_pool(1, levels=(2,))[0]
    student = student_prompt(tokenizer, problem.prompt_text)
    teacher = teacher_prompt(tokenizer, problem.prompt_text, problem.answer)
    # The same question *and answer-format instruction*: only the hint differs.
    assert INSTRUCTION in student and INSTRUCTION in teacher
    user_student = student.removesuffix("<eos><|assistant|>")
    assert teacher.startswith(user_student + "\n")
    assert problem.answer in teacher[len(user_student) :]


class NoService:
    """The baseline draws from the local pool: any call to the service fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the local baseline called the service ({name})")


def test_uniform_baseline_steps_draw_reproducibly_with_weight_one(tokenizer):  # noqa: F811
    pool = make_pool(6, levels=(1,))
    response = list(tokenizer("it is 7")["input_ids"])

    def two_steps(seed):
        model = tiny_model(tokenizer, 0)
        before = [p.detach().clone() for p in model.parameters()]
        engine = ScriptedEngine(response)
        recipe = SelfDistillation(
            model,
            frozen_copy(tiny_model(tokenizer, 1)),
            tokenizer,
            engine,
            torch.optim.AdamW(model.parameters(), lr=1e-3),
            seed=seed,
            temperature=0.7,
            max_new_tokens=16,
        )
        results = []
        run_steps(
            recipe,
            NoService(),
            "baseline",
            pool,
            scheme="local",
            batch_size=3,
            seed=seed,
            steps=range(1, 3),
            on_step=lambda result, difficulty, lap: results.append((result, difficulty)),
        )
        moved = any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
        return results, engine.prompts, moved

    results, prompts, moved = two_steps(seed=0)
    assert moved and [r.step for r, _ in results] == [1, 2]
    for result, difficulty in results:
        assert difficulty is None  # nothing read from a service
        assert result.trained_items == 3 and result.loss > 0
        assert [item.loss_weight for item in result.drawn.items] == [1.0] * 3
        assert result.response_tokens == 3 * len(response)
        assert len({item.problem_id for item in result.drawn.items}) == 3
    assert len(prompts) == 6
    assert two_steps(seed=0)[1] == prompts
    assert {tuple(two_steps(seed=s)[1]) for s in range(1, 6)} != {tuple(prompts)}

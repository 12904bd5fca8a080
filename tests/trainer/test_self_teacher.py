"""Self-teacher prompts and the PACED-weighted reverse KL, on a tiny in-process Qwen2."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from trainer_client.tasks.toy import ModelShape, char_tokenizer, tiny_qwen2  # noqa: E402
from trainer_client.trainer.self_teacher import (  # noqa: E402
    SelfDistillExample,
    frozen_copy,
    make_example,
    self_distill_loss,
    student_prompt,
    teacher_prompt,
)

CHARS = "0123456789+-=?.:,()<>|_ abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
# A ChatML-like template, as SmolLM2's: the generation prompt ends at the assistant turn.
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tokenizer():
    tok = char_tokenizer(CHARS)
    tok.chat_template = TEMPLATE
    return tok


def tiny_model(tokenizer, seed: int = 0):
    return tiny_qwen2(ModelShape(32, 64, 2), tokenizer, seed, max_positions=512)


def test_only_the_teacher_sees_the_answer(tokenizer):
    question = "Ana has 3 apples. How many now?"
    student = student_prompt(tokenizer, question)
    teacher = teacher_prompt(tokenizer, question, "17")
    assert "17" not in student and "17" in teacher
    assert question in student and question in teacher
    # Both end where the assistant's answer starts, so the same response continues both.
    assert student.endswith("<|assistant|>") and teacher.endswith("<|assistant|>")


def _examples(tokenizer):
    return [
        make_example(
            tokenizer, "Ben has 4 pens. How many now?", "6", tokenizer("he has 6")["input_ids"], 1.0
        ),
        make_example(
            tokenizer, "A bus has 12. How many?", "20", tokenizer("20.")["input_ids"], 1.0
        ),
    ]


def test_response_tokens_are_scored_at_the_right_positions(tokenizer):
    """Batched, padded loss == each example's loss computed alone by hand."""
    model = tiny_model(tokenizer, 0)
    teacher = tiny_model(tokenizer, 1)
    examples = _examples(tokenizer)
    pad = tokenizer.pad_token_id
    batched = self_distill_loss(model, teacher, examples, pad_id=pad, reduction="sequence")

    def by_hand(example):
        r = torch.tensor(example.response_ids)
        s_ids = torch.tensor([example.student_prompt_ids + example.response_ids])
        t_ids = torch.tensor([example.teacher_prompt_ids + example.response_ids])
        n_s, n_t = len(example.student_prompt_ids), len(example.teacher_prompt_ids)
        log_s = model(input_ids=s_ids).logits[0, n_s - 1 : n_s - 1 + len(r)].log_softmax(-1)
        log_t = teacher(input_ids=t_ids).logits[0, n_t - 1 : n_t - 1 + len(r)].log_softmax(-1)
        return (log_s.exp() * (log_s - log_t)).sum(-1).mean()

    expected = sum(by_hand(e) for e in examples) / len(examples)
    assert batched.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


def test_identical_teacher_context_gives_zero_loss(tokenizer):
    model = tiny_model(tokenizer, 0)
    example = _examples(tokenizer)[0]
    same = SelfDistillExample(
        example.student_prompt_ids, example.student_prompt_ids, example.response_ids
    )
    loss = self_distill_loss(model, frozen_copy(model), [same], pad_id=tokenizer.pad_token_id)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    # The privileged prompt really changes the teacher's distribution (a random tiny model
    # moves little: ten times the tolerance of "zero" above is the bar).
    assert self_distill_loss(model, frozen_copy(model), [example], pad_id=0).item() > 1e-5


def test_paced_weights_scale_each_problem(tokenizer):
    model = tiny_model(tokenizer, 0)
    teacher = frozen_copy(model)
    a, b = _examples(tokenizer)
    pad = tokenizer.pad_token_id

    def weighted(wa, wb):
        a.loss_weight, b.loss_weight = wa, wb
        return self_distill_loss(model, teacher, [a, b], pad_id=pad).item()

    alone_a = self_distill_loss(
        model,
        teacher,
        [SelfDistillExample(a.student_prompt_ids, a.teacher_prompt_ids, a.response_ids, 1.0)],
        pad_id=pad,
    ).item()
    # Sequence reduction, N = B = 2: weight 2 on a and 0 on b equals a alone.
    assert weighted(2.0, 0.0) == pytest.approx(alone_a, rel=1e-5)
    # All weights 0 (every problem mastered or intractable): loss 0, gradient 0, no NaN.
    model.zero_grad()
    a.loss_weight, b.loss_weight = 0.0, 0.0
    loss = self_distill_loss(model, teacher, [a, b], pad_id=pad)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_a_weighted_step_moves_the_student_towards_the_teacher(tokenizer):
    model = tiny_model(tokenizer, 0)
    # A different network as teacher: a gap large enough to measure a few steps closing.
    teacher = frozen_copy(tiny_model(tokenizer, 1))
    before_teacher = [p.clone() for p in teacher.parameters()]
    examples = _examples(tokenizer)
    examples[0].loss_weight, examples[1].loss_weight = 0.25, 0.16
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    pad = tokenizer.pad_token_id
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = self_distill_loss(model, teacher, examples, pad_id=pad)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(torch.equal(p, q) for p, q in zip(teacher.parameters(), before_teacher, strict=True))
    assert not all(
        torch.equal(p, q) for p, q in zip(model.parameters(), teacher.parameters(), strict=True)
    )


def test_bad_examples_are_rejected(tokenizer):
    model = tiny_model(tokenizer, 0)
    with pytest.raises(ValueError, match="no examples"):
        self_distill_loss(model, model, [], pad_id=0)
    with pytest.raises(ValueError, match="response token"):
        self_distill_loss(model, model, [SelfDistillExample([1, 2], [1, 2], [])], pad_id=0)

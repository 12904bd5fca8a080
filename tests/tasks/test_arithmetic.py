"""Tests of the built-in CPU task: problems, splits, tokenizer, prepare() and its cache."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from trainer_client.cli.teacher import main_teacher  # noqa: E402
from trainer_client.tasks.arithmetic import (  # noqa: E402
    build,  # noqa: E402
    evaluate,
    final_answer,
    full_config,
    is_correct,
    load_model,
    load_tokenizer,
    make_problems,
    make_splits,
    prepare,
    quick_config,
    read_jsonl,
    reference_response,
    sample_pass_rates,
    zone_shares,
)
from trainer_client.tasks.arithmetic.problems import make_reverse_problems, reverse_problem  # noqa: E402
from trainer_client.tasks.arithmetic.tokenizer import CHARACTERS, build_tokenizer  # noqa: E402
from trainer_client.tasks.toy import ModelShape  # noqa: E402

STEP = re.compile(r"(\d)\+(\d)\+(\d)=(\d\d)")


def _operands(prompt: str) -> tuple[int, int]:
    left, right = prompt.rstrip(":").split("+")
    return int(left), int(right)


def test_generator_is_deterministic_and_answers_are_sums():
    first = make_problems(seed=7, per_level=30, levels=range(1, 5))
    assert first == make_problems(seed=7, per_level=30, levels=range(1, 5))
    assert first != make_problems(seed=8, per_level=30, levels=range(1, 5))
    assert len({p.id for p in first}) == len(first) == 120
    for problem in first:
        a, b = _operands(problem.prompt)
        assert problem.answer == str(a + b)
        assert problem.skill == "add"
        # The level is the digit count of both operands.
        assert len(str(a)) == len(str(b)) == problem.level


def test_level_one_is_capped_at_its_hundred_distinct_problems():
    problems = make_problems(seed=0, per_level=500, levels=[1])
    assert len(problems) == 100
    assert {_operands(p.prompt) for p in problems} == {(a, b) for a in range(10) for b in range(10)}


def test_worked_steps_are_correct_and_end_with_the_answer():
    for problem in make_problems(seed=3, per_level=40, levels=range(1, 6)):
        response = reference_response(problem)
        assert response.endswith("=" + problem.answer)
        assert final_answer(response) == problem.answer
        assert is_correct(problem, response)
        steps = STEP.findall(response)
        assert len(steps) == problem.level
        a, b = _operands(problem.prompt)
        carry = 0
        for index, (da, db, carry_in, total) in enumerate(steps):
            # Least-significant digit first, each step carrying into the next.
            assert int(da) == a // 10**index % 10
            assert int(db) == b // 10**index % 10
            assert int(carry_in) == carry
            assert int(total) == int(da) + int(db) + carry
            carry = int(total) // 10


def test_final_answer_reads_the_last_integer():
    problem = make_problems(seed=0, per_level=1, levels=[3])[0]
    assert final_answer("1+2+0=03 =17 then =42") == "42"
    assert final_answer("no digits") is None
    assert not is_correct(problem, reference_response(problem) + " 0")


def test_heldout_skill_reverses_digits():
    problem = reverse_problem(4817)
    assert problem.answer == "7184"
    assert problem.skill == "rev"
    assert reference_response(problem) == "=7184"


def test_splits_are_disjoint_and_reproducible():
    splits = make_splits(
        1,
        levels=3,
        train_per_level=500,
        pool_per_level=30,
        eval_per_level=20,
        heldout_train=200,
        heldout_eval=30,
    )
    train, pool, evaluation = (
        {p.prompt for p in s} for s in (splits.train, splits.pool, splits.eval)
    )
    assert not train & pool and not train & evaluation and not pool & evaluation
    assert not {p.prompt for p in splits.heldout_train} & {p.prompt for p in splits.heldout_eval}
    # The distillation pool never contains the held-out skill.
    assert {p.skill for p in splits.pool} == {"add"}
    assert {p.skill for p in splits.heldout_eval} == {"rev"}
    assert {p.level for p in splits.pool} == {1, 2, 3}
    again = make_splits(
        1,
        levels=3,
        train_per_level=500,
        pool_per_level=30,
        eval_per_level=20,
        heldout_train=200,
        heldout_eval=30,
    )
    assert again == splits


def test_tokenizer_round_trips_every_task_character(tmp_path):
    tokenizer = build_tokenizer()
    splits = make_splits(0, 5, 20, 5, 5, 10, 10)
    texts = [CHARACTERS] + [
        p.prompt + reference_response(p) for p in splits.train + splits.heldout_train
    ]
    tokenizer.save_pretrained(str(tmp_path))
    reloaded = load_tokenizer(tmp_path)
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert len(ids) == len(text) + 1  # one token per character after <bos>
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
        assert reloaded(text)["input_ids"] == ids
    assert reloaded.padding_side == "left"
    assert reloaded.eos_token_id != reloaded.pad_token_id


# Smaller than quick mode so the module stays fast on a busy 2-core CI runner: two levels,
# the student warmed up on level 1 only, so level 2 is where the teacher must be ahead.
TINY = replace(
    quick_config(0),
    levels=2,
    train_per_level=400,
    pool_per_level=16,
    eval_per_level=16,
    heldout_train=150,
    heldout_eval=16,
    teacher=ModelShape(96, 288, 2),
    teacher_steps=300,
    teacher_lr=5e-3,
    teacher_heldout_share=0.1,
    student=ModelShape(64, 192, 2),
    student_steps=150,
    student_heldout_share=0.2,
    student_level_weights=(1.0,),
    k=4,
)


@pytest.fixture(scope="module")
def quick_task(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("task")
    started = time.perf_counter()
    artifacts = prepare(workdir, config=TINY)
    return artifacts, time.perf_counter() - started


def test_prepare_writes_every_artefact(quick_task):
    artifacts, _ = quick_task
    assert not artifacts.from_cache
    pool = read_jsonl(artifacts.problems_path)
    evaluation = read_jsonl(artifacts.eval_path)
    heldout = read_jsonl(artifacts.heldout_skill_path)
    assert pool and evaluation and heldout
    assert not {p.id for p in pool} & {p.id for p in evaluation}
    assert {p.skill for p in heldout} == {"rev"}
    rates = json.loads(artifacts.pass_rates_path.read_text())
    assert set(rates) == {p.id for p in pool}
    meta = json.loads(artifacts.task_json_path.read_text())
    assert meta["config_hash"] == TINY.hash() == artifacts.config_hash
    assert sum(meta["zones"].values()) == pytest.approx(1.0)
    assert meta["parameters"]["teacher"] > meta["parameters"]["student"]


def test_prepare_reuses_its_cache(quick_task):
    artifacts, first_seconds = quick_task
    started = time.perf_counter()
    again = prepare(artifacts.workdir, config=TINY)
    seconds = time.perf_counter() - started
    assert again.from_cache
    assert seconds < min(5.0, first_seconds / 5)
    assert (again.teacher_dir, again.student_init_dir, again.problems_path) == (
        artifacts.teacher_dir,
        artifacts.student_init_dir,
        artifacts.problems_path,
    )
    assert again.metadata == artifacts.metadata
    # A different config must not be served from this cache.
    assert replace(TINY, seed=1).hash() != artifacts.config_hash
    assert quick_config(0).hash() != full_config(0).hash()
    # The teacher is kept when only student settings change, and retrained otherwise.
    student_tuned = replace(TINY, student_steps=TINY.student_steps + 1)
    assert student_tuned.hash() != TINY.hash()
    assert student_tuned.teacher_hash() == TINY.teacher_hash()
    assert replace(TINY, teacher_lr=1e-3).teacher_hash() != TINY.teacher_hash()
    stamp = artifacts.teacher_dir / build.TEACHER_STAMP
    assert stamp.read_text() == TINY.teacher_hash()


def test_teacher_clearly_beats_student_on_the_hardest_level(quick_task):
    artifacts, _ = quick_task
    tokenizer = load_tokenizer(artifacts.tokenizer_dir)
    evaluation = read_jsonl(artifacts.eval_path)
    hardest = max(p.level for p in evaluation)
    hard = [p for p in evaluation if p.level == hardest]
    teacher = evaluate(load_model(artifacts.teacher_dir), tokenizer, hard)
    student = evaluate(load_model(artifacts.student_init_dir), tokenizer, hard)
    assert teacher["accuracy"] >= student["accuracy"] + 0.5
    # The saved teacher reproduces what prepare() measured (greedy decoding is deterministic).
    recorded = artifacts.metadata["teacher"]["eval"]["per_level"][str(hardest)]
    assert teacher["accuracy"] == pytest.approx(recorded)


def test_sampled_pass_rates_are_reproducible_and_graded(quick_task):
    artifacts, _ = quick_task
    tokenizer = load_tokenizer(artifacts.tokenizer_dir)
    student = load_model(artifacts.student_init_dir)
    pool = read_jsonl(artifacts.problems_path)[:24]
    rates = sample_pass_rates(student, tokenizer, pool, k=4, seed=5)
    assert rates.shape == (len(pool),)
    # k=4 samples: every rate is a multiple of 1/4.
    assert np.allclose(rates * 4, np.round(rates * 4))
    assert np.array_equal(rates, sample_pass_rates(student, tokenizer, pool, k=4, seed=5))
    # The easiest level is easier for the student than the hardest.
    levels = np.array([p.level for p in pool])
    assert rates[levels == levels.min()].mean() > rates[levels == levels.max()].mean()
    shares = zone_shares(rates)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_zone_shares_counts_each_zone():
    shares = zone_shares(np.array([1.0, 1.0, 0.5, 0.125, 0.0]))
    assert shares == pytest.approx({"mastered": 0.4, "frontier": 0.4, "intractable": 0.2})


def test_cli_prints_teacher_accuracy_and_zones(quick_task, capsys, monkeypatch):
    artifacts, _ = quick_task
    # Point --quick at the tiny config so the CLI finds the cached build instead of training.
    monkeypatch.setattr(build, "quick_config", lambda seed: replace(TINY, seed=seed))
    assert main_teacher(["--workdir", str(artifacts.workdir), "--quick", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "(cache," in out
    assert "teacher accuracy per level: L1=" in out
    assert re.search(r"mastered \d+%\s+frontier \d+%\s+intractable \d+%", out)


def test_reverse_generator_caps_each_digit_count():
    problems = make_reverse_problems(seed=0, count=2000, digit_counts=(2, 3))
    # Only 9**2 two-digit numbers without a zero exist; the rest of the share is not invented.
    assert sum(p.level == 2 for p in problems) == 81
    assert sum(p.level == 3 for p in problems) == 729
    assert len({p.id for p in problems}) == len(problems)
    for problem in problems:
        assert problem.answer == problem.prompt.removeprefix("rev ").rstrip(":")[::-1]
        assert "0" not in problem.answer


def test_pool_keeps_exactly_the_problems_whose_reference_the_checker_accepts(quick_task):
    artifacts, _ = quick_task
    meta = artifacts.metadata
    pool = read_jsonl(artifacts.problems_path)
    references = json.loads(artifacts.references_path.read_text())
    assert {p.id for p in pool} == set(references)
    assert len(pool) + sum(meta["references_dropped"].values()) == meta["sizes"]["pool_candidates"]
    tokenizer = load_tokenizer(artifacts.tokenizer_dir)
    for problem in pool:
        assert is_correct(
            problem, tokenizer.decode(references[problem.id], skip_special_tokens=True)
        )


def test_wrong_references_are_dropped_and_counted(quick_task):
    # The warmed-up student as a "teacher": right on level 1, mostly wrong on level 2.
    artifacts, _ = quick_task
    weak = load_model(artifacts.student_init_dir)
    tokenizer = load_tokenizer(artifacts.tokenizer_dir)
    candidates = read_jsonl(artifacts.eval_path)
    references, kept, dropped = build.verified_references(weak, tokenizer, candidates, 64)
    assert sum(dropped.values()) > 0 and kept
    assert len(kept) + sum(dropped.values()) == len(candidates)
    assert [p.id for p in kept] == [p.id for p in candidates if p.id in references]
    for problem in kept:
        assert is_correct(
            problem, tokenizer.decode(references[problem.id], skip_special_tokens=True)
        )


def test_the_shipped_task_is_the_current_full_build_and_prepare_uses_it(tmp_path):
    """`make demo` copies the shipped build instead of training for minutes: it must be the
    build of today's full config (else run `make task-prebuilt`)."""
    from trainer_client.tasks.arithmetic.build import PREBUILT, prepare
    from trainer_client.tasks.arithmetic.config import full_config

    meta = json.loads((PREBUILT / "task.json").read_text())
    assert meta["config_hash"] == full_config(0).hash(), "run: make task-prebuilt"
    started = time.perf_counter()
    artifacts = prepare(tmp_path / "task", seed=0)
    assert time.perf_counter() - started < 30  # a copy, not a build
    assert artifacts.config_hash == full_config(0).hash()
    assert (tmp_path / "task" / "teacher" / "config.json").exists()

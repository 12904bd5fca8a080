"""The task build of issue 11: the same config gives the same models and data (twice, hashed),
and the warm-up stops inside its band on the dev split. (Reference verification is tested in
test_task.py on a teacher that is right often enough to keep some.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from trainer_client.tasks.arithmetic import prepare, quick_config, read_jsonl  # noqa: E402
from trainer_client.tasks.toy import ModelShape  # noqa: E402

# Seconds to build: every stage runs, nothing is trained to competence.
MICRO = replace(
    quick_config(0),
    levels=2,
    train_per_level=200,
    pool_per_level=24,
    pool_levels=(2,),
    eval_per_level=10,
    dev_per_level=12,
    heldout_train=40,
    heldout_eval=10,
    reverse_digits=(3,),
    teacher=ModelShape(64, 128, 1),
    teacher_steps=30,
    teacher_batch=32,
    student=ModelShape(32, 64, 1),
    student_steps=60,
    student_batch=16,
    student_level_weights=(1.0, 0.5),
    warmup_band_level=2,
    warmup_band=(0.0, 1.0),  # any accuracy is inside: the first check stops the warm-up
    warmup_min_steps=20,
    warmup_check_every=10,
    k=2,
    eval_batch_size=64,
)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    return [prepare(tmp_path_factory.mktemp(f"build{i}"), config=MICRO) for i in range(2)]


def _content(artifacts) -> dict:
    meta = dict(artifacts.metadata)
    meta.pop("timings_s")
    files = ("problems.jsonl", "references.json", "initial_pass_rates.json", "dev.jsonl")
    return {"meta": meta, **{name: (artifacts.workdir / name).read_text() for name in files}}


def test_the_same_config_builds_the_same_task_twice(two_builds):
    first, second = two_builds
    assert not first.from_cache and not second.from_cache
    assert first.metadata["fingerprints"] == second.metadata["fingerprints"]
    assert _content(first) == _content(second)
    # And the saved weights are byte-identical.
    for name in ("teacher", "student_init"):
        a = (first.workdir / name / "model.safetensors").read_bytes()
        b = (second.workdir / name / "model.safetensors").read_bytes()
        assert a == b


def test_warmup_stops_at_the_first_check_inside_the_band(two_builds):
    student = two_builds[0].metadata["student_init"]
    assert student["warmup_steps"] == MICRO.warmup_min_steps
    assert [c["step"] for c in student["band_checks"]] == [MICRO.warmup_min_steps]
    assert student["in_band"] is True


def test_dev_split_is_disjoint_from_the_pool_and_the_pool_keeps_its_levels(two_builds):
    artifacts = two_builds[0]
    pool_ids = {p.id for p in read_jsonl(artifacts.problems_path)}
    dev = read_jsonl(artifacts.workdir / "dev.jsonl")
    # Level 1 has 100 distinct problems: a held-out split takes at most a fifth of them.
    assert [p.level for p in dev].count(1) == min(MICRO.dev_per_level, 20)
    assert not {p.id for p in dev} & pool_ids
    candidates = artifacts.metadata["sizes"]["pool_candidates"]
    assert candidates == MICRO.pool_per_level  # only level 2, as configured

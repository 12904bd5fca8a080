"""The PACED training loop against a real `paced serve` process (SQLite, free port).

The task is the built-in arithmetic family cut down to 1-digit addition so everything runs in
seconds: one tiny Qwen2 is trained briefly in-test; its early weights are the student (partly
right, so sampled pass rates spread over the zones) and its later weights the teacher.
"""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from trainer_client.client import PacedClient  # noqa: E402
from trainer_client.local.service import local_service  # noqa: E402
from trainer_client.tasks.arithmetic.evaluation import evaluate  # noqa: E402
from trainer_client.tasks.arithmetic.problems import make_problems  # noqa: E402
from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer  # noqa: E402
from trainer_client.tasks.arithmetic.training import train_supervised  # noqa: E402
from trainer_client.tasks.toy import ModelShape, tiny_qwen2  # noqa: E402
from trainer_client.trainer.bundle import TaskBundle  # noqa: E402
from trainer_client.trainer.config import TrainConfig  # noqa: E402
from trainer_client.trainer.metrics import MetricsLog  # noqa: E402
from trainer_client.trainer.recipes.distill import train  # noqa: E402
from trainer_client.trainer.seeds import derive_seed  # noqa: E402


@pytest.fixture(scope="module")
def service_url(tmp_path_factory):
    with local_service(tmp_path_factory.mktemp("paced-service")) as url:
        yield url


@pytest.fixture(scope="module")
def tiny_task():
    torch.set_num_threads(1)
    tokenizer = build_tokenizer()
    problems = make_problems(seed=0, per_level=100, levels=[1])
    model = tiny_qwen2(ModelShape(48, 96, 2), tokenizer, seed=0)
    train_supervised(model, tokenizer, problems, steps=150, batch_size=32, lr=3e-3, seed=0)
    student = copy.deepcopy(model)
    train_supervised(model, tokenizer, problems, steps=250, batch_size=32, lr=3e-3, seed=1)
    return {
        "tokenizer": tokenizer,
        "student": student,
        "teacher": model,
        "pool": problems[:60],
        "eval": problems[60:],
    }


def bundle(task, student=None) -> TaskBundle:
    tokenizer, eval_split = task["tokenizer"], task["eval"]
    return TaskBundle(
        teacher=copy.deepcopy(task["teacher"]),
        student=copy.deepcopy(student if student is not None else task["student"]),
        tokenizer=tokenizer,
        pool=task["pool"],
        evaluate=lambda model: {"eval": evaluate(model, tokenizer, eval_split)},
    )


def config(run: str, **overrides) -> TrainConfig:
    base = dict(
        run=run,
        steps=20,
        batch_size=8,
        lr=2e-3,
        warmup_steps=0,  # 20 steps are too few to spend some of them warming up
        k=4,
        refresh_every=7,
        refresh_size=16,
        checkpoint_every=5,
        max_new_tokens=24,
        evaluate=False,
        final_estimate=False,
    )
    return TrainConfig(**{**base, **overrides})


def run_training(url, cfg, task, workdir, **kwargs):
    with PacedClient(url) as client:
        return train(cfg, client, bundle(task, kwargs.pop("student", None)), workdir, **kwargs)


def test_paced_run_posts_outcomes_draws_batches_and_lowers_loss(service_url, tiny_task, tmp_path):
    cfg = config("paced-fkl", evaluate=True, final_estimate=True)
    summary = run_training(service_url, cfg, tiny_task, tmp_path)
    records = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert [r["step"] for r in records] == list(range(20))
    # The service saw every pool problem rolled out (initial, refresh and final estimates).
    with PacedClient(service_url) as client:
        difficulty = client.difficulty("paced-fkl")
        stats = client.get_problem_stats("paced-fkl", tiny_task["pool"][0].id)
    assert difficulty.zones.unseen == 0
    assert stats.attempts >= cfg.k
    # Proportional batches only contain frontier problems (w > 0), drawn by the service.
    for record in records:
        assert record["fallback"] is None and record["batch_size"] > 0
        assert all(0 < p < 1 for p in record["batch_pass_rates"])
    assert sum(r["refreshed"] for r in records) == 2 * cfg.refresh_size  # steps 7 and 14
    first = sum(r["loss"] for r in records[:5]) / 5
    last = sum(r["loss"] for r in records[-5:]) / 5
    print(f"mean loss first 5 steps {first:.4f}, last 5 steps {last:.4f}")
    assert last < 0.8 * first, (first, last)
    assert summary["zones_before"] and summary["zones_after"]
    assert sum(summary["zones_after"].values()) == len(tiny_task["pool"])
    # Window "latest" (the trainer's default): after the final fresh estimate, the service's
    # pass rate of every problem IS that estimate, and its zones are the fresh zones.
    agreement = summary["service_agreement"]
    assert agreement["equal"] == agreement["problems"] == len(tiny_task["pool"])
    assert agreement["max_abs_diff"] == 0.0
    service_zones = summary["service_after"]["zones"]
    assert {z: service_zones[z] for z in summary["zones_after"]} == summary["zones_after"]
    assert summary["eval_after"]["eval"]["n"] == len(tiny_task["eval"])
    assert 0 <= summary["timings"]["client_share_of_step"] < 1
    assert json.loads((tmp_path / "summary.json").read_text())["run"] == "paced-fkl"


def test_resume_continues_at_the_saved_step_with_the_same_next_batch(
    service_url, tiny_task, tmp_path
):
    first = config("resume-run", steps=10, checkpoint_every=10)
    run_training(service_url, first, tiny_task, tmp_path)
    # What an uninterrupted run would draw at step 10, on the same service state.
    with PacedClient(service_url) as client:
        expected = client.batch(
            "resume-run", first.batch_size, seed=derive_seed(first.seed, 10, "batch")
        )
    run_training(service_url, first.with_overrides(steps=14), tiny_task, tmp_path, resume=True)
    records = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert [r["step"] for r in records] == list(range(14))  # nothing replayed, nothing skipped
    assert records[10]["batch_ids"] == [item.problem_id for item in expected.items]


def test_hard_filter_never_trains_on_settled_problems(service_url, tiny_task, tmp_path):
    cfg = config("hard-filter-run", scheme="hard-filter", steps=8, refresh_every=3)
    run_training(service_url, cfg, tiny_task, tmp_path)
    records = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert len(records) == 8
    for record in records:
        assert record["batch_size"] > 0 and record["fallback"] is None
        assert all(p is not None and 0 < p < 1 for p in record["batch_pass_rates"])
        assert record["mean_loss_weight"] == 1.0


def test_everything_mastered_falls_back_to_uniform_batches(service_url, tiny_task, tmp_path):
    # The teacher as student, sampled almost greedily: every problem comes out mastered, so
    # proportional batches are impossible (409) even after a refresh.
    # A tiny lr keeps the student where it is: the point is the 409 path, not learning.
    cfg = config("all-mastered", steps=4, rollout_temperature=0.01, refresh_every=100, lr=1e-7)
    summary = run_training(service_url, cfg, tiny_task, tmp_path, student=tiny_task["teacher"])
    records = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert [r["fallback"] for r in records] == ["uniform"] * 4
    assert all(r["conflicts"] == 2 and r["batch_size"] == cfg.batch_size for r in records)
    assert all(r["refreshed"] == 0 for r in records)  # the 409 refresh is not a scheduled one
    assert summary["conflicts"] == 8 and summary["fallbacks"] == 4
    assert summary["refreshes"] == 4
    assert records[-1]["zones"]["mastered"] == len(tiny_task["pool"])


def test_window_all_service_view_lags_the_fresh_estimate(service_url, tiny_task, tmp_path):
    # The pre-issue-11 behaviour, kept as an option: counts summed over every round, so the
    # service's view averages the initial student in and differs from the fresh estimate.
    cfg = config("window-all", estimator_window="all", final_estimate=True, steps=12)
    summary = run_training(service_url, cfg, tiny_task, tmp_path)
    agreement = summary["service_agreement"]
    assert agreement["problems"] == len(tiny_task["pool"])
    assert agreement["equal"] < agreement["problems"] and agreement["max_abs_diff"] > 0


def test_task_estimate_is_posted_instead_of_rolled_out(service_url, tiny_task, tmp_path):
    rates = {p.id: (i % 5) / 4 for i, p in enumerate(tiny_task["pool"])}
    cfg = config("reuse-estimate", reuse_task_estimate=True, steps=1, refresh_size=0)
    b = bundle(tiny_task)
    b.initial_pass_rates = rates
    with PacedClient(service_url) as client:
        summary = train(cfg, client, b, tmp_path, device="cpu", progress=False)
        served = {w.problem_id: w.pass_rate for w in client.iter_weights("reuse-estimate")}
    # Every (verified) pool problem got the task's estimate, as K attempts at step 0.
    assert len(served) == summary["pool_size"] > 0
    assert all(served[pid] == pytest.approx(rates[pid]) for pid in served)
    assert summary["rollouts_spent"] == 0  # nothing rolled out for the initial estimate


def test_config_file_is_overridden_by_flags(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('[train]\nscheme = "hard-filter"\nsteps = 7\nk = 3\n')
    loaded = TrainConfig.from_file(path, steps=11, k=None)
    assert (loaded.scheme, loaded.steps, loaded.k) == ("hard-filter", 11, 3)
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig().with_overrides(nope=1)
    with pytest.raises(ValueError, match="scheme"):
        TrainConfig(scheme="weighted")


@pytest.mark.parametrize("scheme", ["paced", "hard-filter"])
def test_prefetch_draws_the_same_batches_as_drawing_in_line(
    scheme, service_url, tiny_task, tmp_path
):
    # Batch t+1 drawn while step t trains (refresh steps 7 and 14 are never drawn ahead)
    # must be the batch an in-line draw gets: same ids, same losses, same zones every step.
    runs = {}
    for prefetch in (True, False):
        cfg = config(
            f"prefetch-{scheme}-{prefetch}".lower(), scheme=scheme, prefetch=prefetch, steps=15
        )
        workdir = tmp_path / str(prefetch)
        summary = run_training(service_url, cfg, tiny_task, workdir)
        runs[prefetch] = (summary, MetricsLog(workdir / "metrics.jsonl").read())
    (ahead, ahead_records), (inline, inline_records) = runs[True], runs[False]
    assert [r["batch_ids"] for r in ahead_records] == [r["batch_ids"] for r in inline_records]
    assert [r["loss"] for r in ahead_records] == [r["loss"] for r in inline_records]
    assert [r["zones"] for r in ahead_records] == [r["zones"] for r in inline_records]
    assert sum(r["refreshed"] for r in ahead_records) == 2 * 16
    # The prefetch run really sent requests from its background threads; the other did not.
    assert ahead["timings"]["client_background_s"] > 0
    assert inline["timings"]["client_background_s"] == 0

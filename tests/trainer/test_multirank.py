"""Two ranks (torchrun, gloo, CPU) train as one process does on the same batches.

`train` runs STEPS steps in one process and on 2 ranks (DDP, and FSDP2 once), against one
`paced serve`, for the sampled scheme (paced: batches drawn in proportion to w) and the
loss-weighted one (paced-loss: uniform batches, loss weight w / mean w), with the loss
normalised per token, so the global normaliser (an all-reduce) matters. Rollouts are split
over the ranks chunk by chunk with the chunks' own seeds, so both runs post the same pass
rates and the service draws the same batches; then the parameters agree within TOLERANCE,
and the service holds each rollout once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM  # noqa: E402

from tests.trainer.multirank_worker import main as run_worker  # noqa: E402
from trainer_client.client import PacedClient  # noqa: E402
from trainer_client.local.service import local_service  # noqa: E402
from trainer_client.tasks.arithmetic.problems import make_problems, write_jsonl  # noqa: E402
from trainer_client.tasks.arithmetic.tokenizer import build_tokenizer, save_tokenizer  # noqa: E402
from trainer_client.tasks.arithmetic.training import encode_example, train_supervised  # noqa: E402
from trainer_client.tasks.toy import ModelShape, tiny_qwen2  # noqa: E402
from trainer_client.trainer.config import TrainConfig  # noqa: E402
from trainer_client.trainer.metrics import MetricsLog  # noqa: E402

WORKER = Path(__file__).with_name("multirank_worker.py")
STEPS = 4
POOL = 24
# Float32 sums over a split batch differ from the whole batch's in the last bits; AdamW's
# normalised update keeps the parameters within this of each other after STEPS steps.
TOLERANCE = 1e-5
SCHEMES = ("paced", "paced-loss")


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    """A tiny task in the built-in layout: 1-digit additions, a student trained briefly
    (partly right, so pass rates spread over the zones), a teacher trained a little more,
    and the worked solutions as the teacher's references."""
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("tiny-task")
    tokenizer = build_tokenizer()
    problems = make_problems(seed=0, per_level=60, levels=[1])
    model = tiny_qwen2(ModelShape(48, 96, 2), tokenizer, seed=0)
    train_supervised(model, tokenizer, problems, steps=100, batch_size=32, lr=3e-3, seed=0)
    model.save_pretrained(directory / "student_init")
    train_supervised(model, tokenizer, problems, steps=60, batch_size=32, lr=3e-3, seed=1)
    model.save_pretrained(directory / "teacher")
    save_tokenizer(tokenizer, directory / "tokenizer")
    pool = problems[:POOL]
    references = {}
    for problem in pool:
        ids, prompt_length = encode_example(tokenizer, problem)
        references[problem.id] = ids[prompt_length:]
    (directory / "references.json").write_text(json.dumps(references))
    write_jsonl(directory / "problems.jsonl", pool)
    write_jsonl(directory / "eval.jsonl", problems[POOL:])
    write_jsonl(directory / "heldout_skill.jsonl", [])
    return directory


def config(run: str, scheme: str) -> TrainConfig:
    return TrainConfig(
        run=run,
        scheme=scheme,  # type: ignore[arg-type]
        steps=STEPS,
        batch_size=16,  # of 24: uniform batches hold frontier and zero-weight items
        lr=2e-3,
        warmup_steps=0,
        loss_reduction="token",
        k=4,
        rollout_batch_size=16,  # 4 problems per rollout chunk: several chunks per rank
        refresh_every=2,  # a refresh at step 2, split over the ranks as well
        refresh_size=8,
        max_new_tokens=24,
        evaluate=False,
        final_estimate=True,
    )


@pytest.fixture(scope="module")
def runs(task_dir, tmp_path_factory):
    """(service URL, work root): every scheme trained by 1 process and by 2 ranks."""
    root = tmp_path_factory.mktemp("runs")
    with local_service(tmp_path_factory.mktemp("paced-service")) as url:
        one_rank, two_ranks = [], []
        for scheme in SCHEMES:
            for ranks, into in (("1rank", one_rank), ("2ranks", two_ranks)):
                path = root / f"{scheme}-{ranks}.json"
                path.write_text(json.dumps(config(f"{scheme}-{ranks}", scheme).to_dict()))
                into.append(str(path))
        fsdp = root / "paced-fsdp.json"
        fsdp.write_text(json.dumps(config("paced-fsdp", "paced").to_dict()))
        two_ranks.append(f"{fsdp}:fsdp")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        worker = [str(WORKER), url, str(task_dir), str(root)]
        run_worker([url, str(task_dir), str(root), *one_rank])  # one process: this one
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        subprocess.run(
            [*launch, "--nproc-per-node", "2", *worker, *two_ranks],
            check=True,
            env=env,
            timeout=300,
        )
        yield url, root


def parameters(workdir: Path) -> dict[str, torch.Tensor]:
    return torch.load(workdir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]


@pytest.mark.parametrize(
    ("scheme", "multi"),
    [("paced", "paced-2ranks"), ("paced-loss", "paced-loss-2ranks"), ("paced", "paced-fsdp")],
)
def test_two_ranks_train_as_one_process_on_the_same_batches(runs, task_dir, scheme, multi):
    _, root = runs
    one, two = root / f"{scheme}-1rank", root / multi
    steps_one = MetricsLog(one / "metrics.jsonl").read()
    steps_two = MetricsLog(two / "metrics.jsonl").read()
    assert len(steps_one) == len(steps_two) == STEPS
    for a, b in zip(steps_one, steps_two, strict=True):
        assert a["batch_ids"] == b["batch_ids"] and a["batch_size"] > 0
        assert a["trained_items"] == b["trained_items"] > 0
        assert a["tokens"] == b["tokens"]  # the global normaliser's count
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    if scheme == "paced-loss":  # uniform batches: some items weigh 0 and are skipped
        assert any(r["mean_loss_weight"] != 1.0 for r in steps_one)
    first, second = parameters(one), parameters(two)
    assert first.keys() == second.keys()
    worst = max(float((first[name] - second[name]).abs().max()) for name in first)
    initial = AutoModelForCausalLM.from_pretrained(task_dir / "student_init").state_dict()
    moved = max(float((first[name] - initial[name]).abs().max()) for name in first)
    print(f"{multi}: max |parameter difference| {worst:.2e}, moved {moved:.2e} in {STEPS} steps")
    assert worst <= TOLERANCE < moved / 100  # equal, and not because nothing trained


@pytest.mark.parametrize(
    ("run", "single"),
    [("paced-2ranks", "paced-1rank"), ("paced-loss-2ranks", "paced-loss-1rank")],
)
def test_every_rollout_of_the_ranks_is_recorded_once(runs, run, single):
    url, root = runs
    summary = json.loads((root / run / "summary.json").read_text())
    one_process = json.loads((root / single / "summary.json").read_text())
    recorded = 0
    with PacedClient(url) as client:
        for problem in client.iter_weights(run):
            history = client.problem_history(run, problem.problem_id)
            assert all(entry.outcomes == 1 for entry in history.steps)  # one post per round
            recorded += sum(entry.attempts for entry in history.steps)
    # Initial estimate, the refresh and the final estimate: K attempts per problem each.
    assert recorded == summary["rollouts_spent"] == one_process["rollouts_spent"] > 0

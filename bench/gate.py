"""What the zero-variance gate saves: rollout groups generated per trained group, per arm.

    python bench/gate.py [--task work/task] [--groups 960] [--size 32] [--k 8] [--out FILE]
    make bench-gate

The policy is the built arithmetic task's student (make demo builds work/task), trained by
GRPO on CPU as it goes (bench/_gate_student.py); K completions per problem graded by the
exact checker; the pool is the task's 8,000 problems (levels 3 and 4; at the start 64 %
never solved in 8 samples, 2 % always). Every arm starts from the same student and a fresh
paced run, and trains the same number of groups:

  uniform         uniform draws, no filter: every group trained (TRL today)
  dapo_3x         uniform, 3x oversampling, zero-variance groups filtered; another 3x
                  generation batch while fewer than `size` survive (verl / NeMo-RL's DAPO)
  uniform_gate    uniform draws through the gate (trainer/gate.py), budget 3x per step
  paced_gate      paced draws ∝ w(p) (the service's default estimator) through the gate,
                  from a cold start: paced knows nothing of the pool at step 1
  paced_gate_known  the same, with the pool's history known: the build's 8-sample pass rate
                  of every problem posted before step 1 (what a run knows after one pass
                  over its data). Those 8,000 groups are not counted as generated here.
  paced_gate_thompson  (e) paced_gate with Thompson draws (mode thompson: w(p) at one draw of
                  each problem's posterior), first batch and refills
  paced_gate_epsilon   (e) paced_gate with an epsilon share of 0.1 of each first batch drawn
                  uniformly from the problems the weights leave out (weight 0 or unseen)
  (the predicted estimator of issue 26 is not a run estimator yet: not run)

Every group rolled out is posted to the service (kept or dropped). Phases are thirds of the
trained groups. Prints one JSON document (and writes it to --out).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's http: the repository root, not bench/.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from bench._gate_plot import plot  # noqa: E402
from bench._gate_student import StudentPolicy  # noqa: E402
from trainer_client.client import PacedClient  # noqa: E402
from trainer_client.local.service import local_service  # noqa: E402
from trainer_client.tasks.arithmetic.problems import read_jsonl  # noqa: E402
from trainer_client.trainer.gate import RolledGroup, ZeroVarianceGate  # noqa: E402
from trainer_client.trainer.seeds import derive_seed  # noqa: E402

ARMS = (
    "uniform",
    "dapo_3x",
    "uniform_gate",
    "paced_gate",
    "paced_gate_known",
    "paced_gate_thompson",
    "paced_gate_epsilon",
)
# (batch mode, epsilon share of the first batch) of the paced arms; the rest draw uniformly.
PACED_DRAWS = {
    "paced_gate": ("proportional", None),
    "paced_gate_known": ("proportional", None),
    "paced_gate_thompson": ("thompson", None),
    "paced_gate_epsilon": ("proportional", 0.1),
}
NOT_RUN = {
    "paced_gate_predicted": "the predicted estimator (pass rates predicted for the current "
    "student, issue 26 point 4) is not a run estimator yet: kinds are empirical and posterior"
}
PHASES = ("early", "middle", "late")
DAPO_MULTIPLIER = 3
DAPO_MAX_GEN_BATCHES = 10  # verl's DAPO recipe: algorithm.filter_groups.max_num_gen_batches
DATASET = "bench-gate"
MAX_STEP_FACTOR = 4  # at most 4x the steps a full batch every step would take


class Ledger:
    """Per step: groups generated, trained, zero-variance, refills, budget hits."""

    def __init__(self, target: int) -> None:
        self.target, self.trained, self.steps = target, 0, []

    def add(self, **row: float) -> None:
        row["phase"] = PHASES[min(2, 3 * self.trained // self.target)]
        self.trained += int(row["trained"])
        self.steps.append(row)

    def summary(self, rows: list[dict[str, Any]] | None = None) -> dict[str, float]:
        rows = self.steps if rows is None else rows
        total = {k: sum(r[k] for r in rows) for k in ("generated", "trained", "zero_variance")}
        total.update({k: sum(r[k] for r in rows) for k in ("refills", "budget_hits", "useful")})
        return {
            "steps": len(rows),
            **{k: int(v) for k, v in total.items()},
            "generated_per_trained": round(total["generated"] / max(1, total["trained"]), 3),
            "zero_variance_share": round(total["zero_variance"] / max(1, total["generated"]), 3),
            "useful_share_of_trained": round(total["useful"] / max(1, total["trained"]), 3),
            "wall_s": round(sum(r["wall_s"] for r in rows), 1),
        }


def run_arm(arm: str, client: PacedClient, policy: StudentPolicy, args) -> dict[str, Any]:
    run = f"gate-{arm}"
    mode, epsilon = PACED_DRAWS.get(arm, ("uniform", None))
    # Uniform arms: every problem eligible for a uniform draw (posterior); paced arms: the
    # service's default estimator (empirical k/n, newest round), p in {0, 1} weight 0.
    estimator = {"estimator": {"kind": "posterior"}} if mode == "uniform" else {}
    client.create_run(run, DATASET, **estimator)
    if arm == "paced_gate_known":
        post_known_history(client, run, policy)
    gated = "gate" in arm
    gate = ZeroVarianceGate(
        client, run, size=args.size, max_groups=DAPO_MULTIPLIER * args.size, mode=mode,
        fill=None if mode == "uniform" else "unseen_then_uniform", seed=args.seed,
    )  # fmt: skip
    ledger = Ledger(args.groups)
    sources: dict[str, list[int]] = {}  # draw source -> [groups, zero-variance groups]
    step = 1  # step 0: before training (the known history of paced_gate_known)
    # A policy that collapsed (every group alike) would never fill a gated batch: stop.
    max_steps = MAX_STEP_FACTOR * -(-args.groups // args.size)
    while ledger.trained < args.groups and step <= max_steps:
        size = min(args.size, args.groups - ledger.trained)
        started = time.perf_counter()
        rounds = [0]

        def rollout(items, step=step, rounds=rounds) -> list[RolledGroup]:
            rounds[0] += 1
            groups = policy.rollout(items, derive_seed(args.seed, arm, step, rounds[0]))
            for item, group in zip(items, groups, strict=True):
                tally = sources.setdefault(getattr(item, "source", None) or "uniform", [0, 0])
                tally[0] += 1
                tally[1] += group.zero_variance
            return groups

        first_size = DAPO_MULTIPLIER * size if arm == "dapo_3x" else size
        seed = derive_seed(args.seed, step, "batch")
        fill = None if mode == "uniform" else "unseen_then_uniform"
        first = client.batch(run, first_size, seed=seed, mode=mode, fill=fill, epsilon=epsilon)
        first = first.items
        if gated:
            gate.size = size
            result = gate.step(step, first, rollout)
            trained, s = result.kept, result.stats
            row = dict(generated=s.generated, zero_variance=s.zero_variance, refills=s.refills)
            row["budget_hits"] = int(s.budget_hit)
        elif arm == "dapo_3x":
            trained, row = dapo_step(gate, step, first, rollout, size)
        else:
            groups = rollout(first)
            gate.record(step, groups)  # posted under the one key rule, as the gate does
            trained = groups
            zero = sum(g.zero_variance for g in groups)
            row = dict(generated=len(groups), zero_variance=zero, refills=0, budget_hits=0)
        policy.train(trained)
        useful = sum(not g.zero_variance for g in trained)
        ledger.add(**row, trained=len(trained), useful=useful, wall_s=time.perf_counter() - started)
        step += 1
    report: dict[str, Any] = {"all": ledger.summary()}
    report["target_reached"] = ledger.trained >= args.groups
    for phase in PHASES:
        report[phase] = ledger.summary([r for r in ledger.steps if r["phase"] == phase])
    report["zero_variance_by_source"] = {
        source: {"groups": n, "zero_variance_share": round(z / n, 3)}
        for source, (n, z) in sorted(sources.items())
    }
    report["seconds"] = {k: round(v, 1) for k, v in policy.seconds.items()}
    report["eval_accuracy_after"] = policy.accuracy()["per_level"]
    return report


def post_known_history(client: PacedClient, run: str, policy: StudentPolicy) -> None:
    """The build's pass rate of every pool problem (k samples of the initial student), as
    outcomes at step 0."""
    k = int(json.loads((policy.task_dir / "task.json").read_text())["config"]["k"])
    rates = json.loads((policy.task_dir / "initial_pass_rates.json").read_text())
    outcomes = [
        {"problem_id": pid, "attempts": k, "successes": round(rate * k), "step": 0}
        for pid, rate in rates.items()
    ]
    client.post_outcomes(run, outcomes, idempotency_key=f"{run}:known-history")


def dapo_step(gate: ZeroVarianceGate, step: int, first, rollout: Callable, size: int):
    """DAPO's dynamic sampling: generation batches of 3x until `size` groups have variance;
    the surplus is discarded (verl's `batch[:train_batch_size]`)."""
    kept: list[RolledGroup] = []
    generated = zero = batches = 0
    seen: set[str] = set()
    pending = list(first)
    while pending and batches < DAPO_MAX_GEN_BATCHES:
        seen.update(item.problem_id for item in pending)
        groups = rollout(pending)
        gate.record(step, groups)
        batches += 1
        generated += len(groups)
        zero += sum(g.zero_variance for g in groups)
        kept += [g for g in groups if not g.zero_variance]
        if len(kept) >= size:
            break
        pending = gate.refill(step, batches, DAPO_MULTIPLIER * size, seen)
    row = dict(generated=generated, zero_variance=zero, refills=batches - 1)
    row["budget_hits"] = int(len(kept) < size)
    return kept[:size], row


def verdicts(arms: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, over all phases: paced + gate <= 1.3 generated per trained group
    against >= 3 for DAPO; zero-variance share <= 25 % where uniform shows >= 40 %."""
    dapo, uniform = arms["dapo_3x"]["all"], arms["uniform"]["all"]
    goals = {}
    for arm in PACED_DRAWS:
        if arm in arms:
            paced = arms[arm]["all"]
            goals[f"{arm}: <= 1.3 generated per trained, DAPO >= 3"] = (
                paced["generated_per_trained"] <= 1.3 and dapo["generated_per_trained"] >= 3
            )
            goals[f"{arm}: zero-variance <= 25 %, uniform >= 40 %"] = (
                paced["zero_variance_share"] <= 0.25 and uniform["zero_variance_share"] >= 0.40
            )
    return goals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="work/task")
    parser.add_argument("--groups", type=int, default=960, help="trained groups per arm")
    parser.add_argument("--size", type=int, default=32, help="groups per step")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--out", default=None, help="write the JSON here too")
    parser.add_argument("--plot", default=None, help="write the figure (PNG) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = Path(args.task)
    if not (task / "task.json").exists():
        sys.exit(f"{task} holds no built task: run `make demo` (or make bench-gate) first")
    pool = read_jsonl(task / "problems.jsonl")
    started = time.perf_counter()
    arms: dict[str, Any] = {}
    initial = StudentPolicy(task, k=args.k, lr=args.lr, seed=args.seed).accuracy()["per_level"]
    with tempfile.TemporaryDirectory() as directory, local_service(directory) as url:
        with PacedClient(url) as client:
            client.create_dataset(DATASET)
            rows = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in pool]
            client.upsert_problems(DATASET, rows)
            for arm in args.arms.split(","):
                policy = StudentPolicy(task, k=args.k, lr=args.lr, seed=args.seed)
                arms[arm] = run_arm(arm, client, policy, args)
                print(f"# {arm}: {json.dumps(arms[arm]['all'])}", file=sys.stderr, flush=True)
    report = {
        "bench": "gate",
        "policy": "the built arithmetic task's student, GRPO on CPU (not simulated)",
        "pool": len(pool),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "plot")}
        | {"budget_groups_per_step": DAPO_MULTIPLIER * args.size},
        "eval_accuracy_initial": initial,
        "arms": arms,
        "not_run": NOT_RUN,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if {"dapo_3x", "uniform"} <= set(arms):
        report["goals_met"] = verdicts(arms)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot:
        plot(report, Path(args.plot))


if __name__ == "__main__":
    main()

"""Gradient signal-to-noise by initial pass-rate bucket, at the initial student.

    python experiments/snr.py [--per-group 48] [--draws 5] [--loss fkl rkl]

For each group of pool problems (level 3 by initial K = 8 pass rate, and level 4, all p = 0),
`--per-group` problems are drawn at random; for each problem the gradient g_i of the
trainer's own loss (trainer_client.trainer.distill.distill_loss, per-sequence reduction,
weight 1) is taken at the initial student, and

    SNR = ||g_bar||^2 / tr Cov(g),   tr Cov = sum_i ||g_i - g_bar||^2 / (n - 1)

(the ratio as the issue defines it; ||g_bar||^2 includes tr Cov / n of noise, so the
"unbiased" column reports (||g_bar||^2 - tr Cov / n) / tr Cov as well). Losses:

    fkl  forward KL on the teacher's verified reference (what every forward-KL arm trains on)
    rkl  reverse KL on one fresh T = 1 sample of the initial student (on-policy, what the
         reverse-KL stage trains on): the regime where p = 0 means the student's own
         samples are wrong

`--draws` independent draws of each group give the spread. Prints one table; the numbers
go to docs/results/raw/snr.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from experiments.derived_task import base_pool, ensure_task  # noqa: E402

GROUPS = {
    "L3 p=0": lambda p, r: p.level == 3 and r == 0.0,
    "L3 p=1/8-3/8": lambda p, r: p.level == 3 and 0.0 < r <= 3 / 8,
    "L3 p=4/8": lambda p, r: p.level == 3 and r == 0.5,
    "L3 p=5/8-7/8": lambda p, r: p.level == 3 and 5 / 8 <= r < 1.0,
    "L3 p=1": lambda p, r: p.level == 3 and r == 1.0,
    "L4 p=0": lambda p, r: p.level == 4 and r == 0.0,
}


def _load(task_dir: Path):
    from transformers import AutoModelForCausalLM

    from trainer_client.tasks.arithmetic.tokenizer import load_tokenizer

    def model(name: str):
        return AutoModelForCausalLM.from_pretrained(task_dir / name, local_files_only=True)

    return model("student_init"), model("teacher").eval(), load_tokenizer(task_dir / "tokenizer")


def per_problem_gradients(student, teacher, tokenizer, problems, responses, kind: str):
    """[n, parameters] matrix: one gradient of the trainer's loss per problem."""
    from trainer_client.trainer.distill import build_sequences, distill_loss

    params = [p for p in student.parameters() if p.requires_grad]
    rows = []
    student.train()
    for problem, response in zip(problems, responses, strict=True):
        prompt = list(tokenizer(problem.prompt)["input_ids"])
        batch = build_sequences([prompt], [response], tokenizer.pad_token_id, torch.device("cpu"))
        loss = distill_loss(
            student, teacher, batch, torch.ones(1), kind, reduction="sequence", normalizer=1.0
        )
        grads = torch.autograd.grad(loss, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]).double())
    return torch.stack(rows)


def snr(grads: torch.Tensor) -> dict[str, float]:
    n = grads.shape[0]
    mean = grads.mean(dim=0)
    trace_cov = float(((grads - mean) ** 2).sum() / (n - 1))
    signal = float(mean.pow(2).sum())
    return {
        "snr": signal / trace_cov,
        "snr_unbiased": (signal - trace_cov / n) / trace_cov,
        "mean_grad_norm_sq": signal,
        "trace_cov": trace_cov,
        "mean_per_problem_norm_sq": float(grads.pow(2).sum(dim=1).mean()),
    }


def student_samples(student, tokenizer, problems, seed: int) -> list[list[int]]:
    """One T = 1 sample per problem from the initial student, reference length + 4 tokens."""
    from trainer_client.tasks.arithmetic.problems import reference_response

    student.eval()
    out = []
    for i, problem in enumerate(problems):
        encoded = tokenizer(problem.prompt, return_tensors="pt")
        torch.manual_seed(seed * 100_003 + i)
        with torch.no_grad():
            ids = student.generate(
                **encoded,
                max_new_tokens=len(reference_response(problem)) + 4,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        out.append(ids[0, encoded["input_ids"].shape[1] :].tolist())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-dir", default=str(REPO_ROOT / "work/task"))
    parser.add_argument("--per-group", type=int, default=48)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--loss", nargs="+", default=["fkl"], choices=["fkl", "rkl"])
    parser.add_argument("--out", default=str(REPO_ROOT / "docs/results/raw/snr.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    task_dir = ensure_task(Path(args.task_dir))
    pool, references, rates = base_pool(task_dir)
    student, teacher, tokenizer = _load(task_dir)
    result: dict = {"command": " ".join(["python", *sys.argv]), "per_group": args.per_group}
    result["groups"] = {}
    for name, keep in GROUPS.items():
        members = [p for p in pool if keep(p, rates[p.id])]
        entry: dict = {"available": len(members)}
        for kind in args.loss:
            draws = []
            for draw in range(args.draws):
                chosen = random.Random(f"snr:{name}:{draw}").sample(members, args.per_group)
                if kind == "fkl":
                    responses = [references[p.id] for p in chosen]
                else:
                    responses = student_samples(student, tokenizer, chosen, seed=draw)
                grads = per_problem_gradients(student, teacher, tokenizer, chosen, responses, kind)
                draws.append(snr(grads))
            entry[kind] = {
                "draws": draws,
                "snr_mean": float(np.mean([d["snr"] for d in draws])),
                "snr_sd": float(np.std([d["snr"] for d in draws], ddof=1)) if args.draws > 1 else 0,
                "snr_unbiased_mean": float(np.mean([d["snr_unbiased"] for d in draws])),
            }
        result["groups"][name] = entry
        print(f"{name}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    result["wall_s"] = time.perf_counter() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(table(result, args.loss))
    return 0


def table(result: dict, kinds: list[str]) -> str:
    head = "| group (available) | " + " | ".join(
        f"{k} SNR (mean ± sd over draws) | {k} unbiased | {k} ‖ḡ‖² | {k} tr Cov" for k in kinds
    )
    lines = [head + " |", "|---" * (1 + 4 * len(kinds)) + "|"]
    for name, entry in result["groups"].items():
        cells = []
        for kind in kinds:
            e = entry[kind]
            signal = np.mean([d["mean_grad_norm_sq"] for d in e["draws"]])
            noise = np.mean([d["trace_cov"] for d in e["draws"]])
            cells.append(
                f"{e['snr_mean']:.3f} ± {e['snr_sd']:.3f} | {e['snr_unbiased_mean']:.3f} | "
                f"{signal:.3g} | {noise:.3g}"
            )
        lines.append(f"| {name} ({entry['available']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

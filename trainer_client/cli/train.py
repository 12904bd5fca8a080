"""`paced teacher` and `paced train`, registered into the `paced` command line.

This module must import without torch (`paced serve` needs none): everything heavy is
imported inside the command functions, which trainer_client/cli/main.py calls through `lazy`.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer_client.trainer.config import LOSSES, SCHEMES

Lazy = Callable[[str, str], Callable[[argparse.Namespace], int]]
ENGINES = ("transformers", "vllm", "openai")

# `paced train` flags that map one-to-one onto TrainConfig fields (dest -> field).
_CONFIG_FLAGS = {
    "run": "run",
    "dataset": "dataset",
    "scheme": "scheme",
    "loss": "loss",
    "steps": "steps",
    "batch_size": "batch_size",
    "k": "k",
    "refresh_every": "refresh_every",
    "refresh_size": "refresh_size",
    "seed": "seed",
    "lr": "lr",
    "half_life": "half_life_steps",
    "window": "estimator_window",
    "checkpoint_every": "checkpoint_every",
    "verifier": "verifier",
    "prefetch": "prefetch",
}


def register(subparsers: Any, lazy: Lazy) -> None:
    teacher = subparsers.add_parser(
        "teacher", help="build the built-in task: train its teacher, warm up its student"
    )
    teacher.add_argument("--workdir", default="work/task", help="task artefacts (cached)")
    teacher.add_argument("--quick", action="store_true", help="small, fast variant (tests, CI)")
    teacher.add_argument("--seed", type=int, default=0)
    teacher.set_defaults(func=lazy(__name__, "run_teacher"))

    train = subparsers.add_parser("train", help="PACED distillation of the built-in task")
    train.add_argument("--url", default="http://127.0.0.1:8000", help="the PACED service")
    train.add_argument("--token", default=None, help="bearer token (admin or the run's)")
    train.add_argument("--workdir", required=True, help="checkpoints, metrics, summary")
    train.add_argument("--task-dir", default=None, help="task artefacts (default work/task)")
    # --run-name: torchrun's own parser takes a bare --run for an abbreviation of --run-path.
    train.add_argument("--run", "--run-name", required=True, help="run name on the service")
    train.add_argument("--dataset", default=None, help="dataset name (default: the run name)")
    train.add_argument("--config", default=None, help="TrainConfig as .json or .toml")
    train.add_argument("--scheme", choices=SCHEMES, default=None)
    train.add_argument("--loss", choices=LOSSES, default=None)
    train.add_argument("--steps", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--k", type=int, default=None, help="rollouts per problem")
    train.add_argument("--refresh-every", type=int, default=None)
    train.add_argument("--refresh-size", type=int, default=None)
    train.add_argument(
        "--no-prefetch",
        dest="prefetch",
        action="store_false",
        default=None,
        help="draw each batch when its step starts instead of while the previous one trains",
    )
    train.add_argument("--half-life", type=float, default=None, help="estimator half-life")
    train.add_argument(
        "--window",
        choices=("all", "latest"),
        default=None,
        help="pass rate from every estimation round, or the newest only (default latest)",
    )
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--checkpoint-every", type=int, default=None)
    train.add_argument("--verifier", choices=("exact", "math"), default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--device", default=None, help="e.g. cpu or cuda (default: auto)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    train.add_argument("--quick", action="store_true", help="use the quick task variant")
    train.add_argument(
        "--pool-limit", type=int, default=None, help="train on the first N pool problems only"
    )
    train.add_argument(
        "--fsdp",
        action="store_true",
        help="under torchrun: shard the student with FSDP2 instead of replicating it (DDP)",
    )
    rollouts = train.add_argument_group("rollout engine (docs/trainer.md: Rollout engines)")
    rollouts.add_argument("--engine", choices=ENGINES, default="transformers")
    rollouts.add_argument("--base-url", default=None, help="openai: the server root URL")
    rollouts.add_argument("--served-model-name", default="student", help="openai: model name")
    rollouts.add_argument("--api-key", default=None, help="openai: bearer token of the server")
    rollouts.add_argument("--max-concurrency", type=int, default=16, help="openai: in flight")
    rollouts.add_argument(
        "--sync-dir",
        default=None,
        help="openai: directory the server reloads weights from (default WORKDIR/vllm-sync)",
    )
    rollouts.add_argument(
        "--no-weight-sync",
        action="store_true",
        help="openai: never push weights (the server keeps its own; pass rates then describe "
        "the served model, not the student)",
    )
    train.set_defaults(func=lazy(__name__, "run_train"))

    export = subparsers.add_parser(
        "vllm-export", help="write a transformers checkpoint in a form vLLM serves and reloads"
    )
    export.add_argument("source", help="a save_pretrained directory (e.g. work/task/student_init)")
    export.add_argument("out", help="the directory to write (give it to vllm as --model)")
    export.add_argument("--tokenizer", default=None, help="tokenizer directory (default: source)")
    export.set_defaults(func=lazy(__name__, "run_vllm_export"))


def run_teacher(args: argparse.Namespace) -> int:
    from trainer_client.cli.teacher import main_teacher

    argv = ["--workdir", str(args.workdir), "--seed", str(args.seed)]
    return int(main_teacher(argv + (["--quick"] if args.quick else [])) or 0)


def train_config(args: argparse.Namespace) -> Any:
    """Defaults < --config file < explicit flags."""
    from trainer_client.trainer.config import TrainConfig

    flags = {field: getattr(args, dest) for dest, field in _CONFIG_FLAGS.items()}
    if args.config:
        return TrainConfig.from_file(args.config, **flags)
    return TrainConfig().with_overrides(**flags)


def run_train(args: argparse.Namespace) -> int:
    """Every rank runs this under torchrun (docs/trainer.md: Multi-rank); one process without."""
    from trainer_client.client import PacedClient
    from trainer_client.tasks.arithmetic.bundle import load_task_bundle, prepare_task
    from trainer_client.trainer.ranks import process_group
    from trainer_client.trainer.recipes.distill import train
    from trainer_client.trainer.report import format_summary

    # `paced` logs at INFO; one httpx line per request would bury the progress output.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = train_config(args)
    task_dir = Path(args.task_dir or "work/task")
    seed = args.seed if args.seed is not None else config.seed
    with process_group() as ranks:
        if ranks.world > 1 and args.engine != "transformers":
            raise SystemExit("several ranks roll out with --engine transformers only")
        if ranks.is_main:  # one rank builds the task (cached), then every rank loads it
            prepare_task(task_dir, seed=seed, quick=args.quick)
        ranks.barrier()
        bundle = load_task_bundle(task_dir, pool_limit=args.pool_limit)
        engine = rollout_engine(args, bundle, seed)
        try:
            with PacedClient(args.url, token=args.token) as client:
                summary = train(
                    config,
                    client,
                    bundle,
                    args.workdir,
                    resume=args.resume,
                    device=args.device,
                    engine=engine,
                    fsdp=args.fsdp,
                )
        finally:
            close = getattr(engine, "close", None)
            if callable(close):
                close()
    if ranks.is_main:
        print(format_summary(summary))
        print(f"summary: {Path(args.workdir) / 'summary.json'}")
        print(json.dumps(summary["timings"]))
    return 0


def rollout_engine(args: argparse.Namespace, bundle: Any, seed: int) -> Any | None:
    """The engine `--engine` names; None means the loop's default (transformers)."""
    workdir = Path(args.workdir)
    if args.engine == "vllm":
        from trainer_client.trainer.engines.vllm_engine import VLLMEngine

        return VLLMEngine.from_model(
            bundle.student, bundle.tokenizer, workdir=workdir / "vllm", seed=seed
        )
    if args.engine == "openai":
        from trainer_client.trainer.engines.openai_engine import OpenAIEngine
        from trainer_client.trainer.engines.server_sync import VLLMServerSync
        from trainer_client.trainer.engines.vllm_checkpoint import ExportPlan

        if not args.base_url:
            raise SystemExit("--engine openai needs --base-url (the OpenAI-compatible server)")
        sync = None
        if not args.no_weight_sync:
            sync = VLLMServerSync(
                args.base_url,
                args.sync_dir or workdir / "vllm-sync",
                plan=ExportPlan.for_config(bundle.student.config),
                api_key=args.api_key,
            )
        return OpenAIEngine(
            args.base_url,
            args.served_model_name,
            api_key=args.api_key,
            max_concurrency=args.max_concurrency,
            weight_sync=sync,
        )
    return None


def run_vllm_export(args: argparse.Namespace) -> int:
    from transformers import AutoModelForCausalLM

    from trainer_client.trainer.engines.vllm_checkpoint import export_for_vllm, load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(args.source, local_files_only=True)
    plan = export_for_vllm(model, load_tokenizer(args.tokenizer or args.source), args.out)
    print(json.dumps({"out": str(args.out), **plan.__dict__}))
    return 0

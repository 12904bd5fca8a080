"""Run commands of ``paced``: ``runs`` (each run's progress), ``show`` (one run's zones and
histogram), ``top`` (its frontier problems with their prompts) and ``create-run`` — over HTTP
through the typed client. Each takes ``--json`` for scripts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from trainer_client.cli.common import (
    client,
    fail,
    format_table,
    guarded,
    one_line,
    print_json,
    service_flags,
)

BAR_WIDTH = 40
PROMPT_WIDTH = 60
ZONE_ORDER = ("unseen", "intractable", "frontier", "mastered")


def register(subparsers: argparse._SubParsersAction, lazy: Callable[..., Any]) -> None:
    common = service_flags(json_output=True)
    here = __name__

    runs = subparsers.add_parser(
        "runs", parents=[common], help="every run's progress: last step, zones, rollouts"
    )
    runs.add_argument("--dataset", default=None, help="only this dataset's runs")
    runs.add_argument("--name", default=None, help="a glob on run names, e.g. 'paced-s*'")
    runs.set_defaults(func=lazy(here, "runs_command"))

    show = subparsers.add_parser(
        "show", parents=[common], help="a run's settings, zones and pass-rate histogram"
    )
    show.add_argument("run")
    show.add_argument("--bins", type=int, default=10)
    show.set_defaults(func=lazy(here, "show_command"))

    top = subparsers.add_parser(
        "top", parents=[common], help="a run's frontier problems: prompts, pass rates, weights"
    )
    top.add_argument("run")
    top.add_argument("-n", "--limit", type=int, default=10, help="how many (at most 100)")
    top.set_defaults(func=lazy(here, "top_command"))

    create = subparsers.add_parser(
        "create-run", parents=[common], help="create a run of a dataset (prints its token once)"
    )
    create.add_argument("run")
    create.add_argument("--dataset", required=True)
    create.add_argument("--alpha", type=float, default=None, help="kernel p^alpha (default 1)")
    create.add_argument("--beta", type=float, default=None, help="kernel (1-p)^beta (default 1)")
    create.add_argument(
        "--estimator", choices=("empirical", "posterior", "predicted"), default=None
    )
    create.add_argument("--window", choices=("latest", "all"), default=None)
    create.add_argument("--half-life", type=float, default=None, help="steps (window all)")
    create.set_defaults(func=lazy(here, "create_run_command"))


def _step(step: int | None) -> str:
    return "-" if step is None else str(step)


@guarded
def runs_command(args: argparse.Namespace) -> int:
    with client(args) as paced:
        summaries = paced.runs_summary(dataset=args.dataset, name=args.name, rollouts=True)
    if args.json:
        print_json(summaries)
        return 0
    rows = []
    for summary in summaries:
        run, latest = summary.run, summary.latest
        zones = latest.zones if latest is not None else None
        rows.append(
            [
                run.name,
                run.dataset,
                _step(run.step),
                *(["-"] * 4 if zones is None else [str(getattr(zones, z)) for z in ZONE_ORDER]),
                "-" if latest is None else f"{latest.effective_problems:.1f}",
                str(summary.rollouts or 0),
                f"{run.estimator.kind}/{run.estimator.window}",
                run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else "",
            ]
        )
    header = ["RUN", "DATASET", "STEP", "UNSEEN", "INTRACT.", "FRONTIER", "MASTERED"]
    print(format_table([*header, "EFFECTIVE", "ROLLOUTS", "ESTIMATOR", "CREATED"], rows))
    return 0


def bar(value: float, most: float, width: int = BAR_WIDTH) -> str:
    filled = 0 if most <= 0 else round(width * value / most)
    return "█" * filled


@guarded
def show_command(args: argparse.Namespace) -> int:
    with client(args) as paced:
        run = paced.get_run(args.run)
        report = paced.difficulty(args.run, bins=args.bins)
    if args.json:
        print_json({"run": run.model_dump(mode="json"), "difficulty": report.model_dump()})
        return 0
    kernel, est = run.kernel, run.estimator
    print(f"run {run.name}  dataset {run.dataset}  step {_step(run.step)}")
    print(
        f"kernel w(p) = p^{kernel.alpha:g} (1-p)^{kernel.beta:g}  estimator {est.kind}"
        f"  window {est.window}  half-life {est.half_life_steps or '-'}"
    )
    total = report.problems or 1
    print(f"\n{report.problems} problems")
    zones = report.zones.model_dump()
    for name in ZONE_ORDER:
        count = zones[name]
        print(f"  {name:<12}{count:>10}  {100 * count / total:5.1f}%  {bar(count, total)}")
    mean = "-" if report.mean_weight is None else f"{report.mean_weight:.4f}"
    print(f"mean weight {mean}  effective problems {report.effective_problems:.1f}")
    counts, edges = report.histogram.counts, report.histogram.edges
    print("\npass rate of problems with attempts")
    most = max(counts, default=0)
    for i, count in enumerate(counts):
        close = "]" if i == len(counts) - 1 else ")"
        label = f"[{edges[i]:.2f}, {edges[i + 1]:.2f}{close}"
        print(f"  {label:<14}{count:>10}  {bar(count, most)}")
    return 0


@guarded
def top_command(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        return fail("--limit must be in 1..100")
    with client(args) as paced:
        overview = paced.overview(args.run, top=args.limit)
    if args.json:
        print_json(overview.top_frontier)
        return 0
    rows = [
        [
            item.problem_id,
            f"{item.pass_rate:.3f}",
            f"{item.weight:.4f}",
            f"{item.successes:g}/{item.attempts:g}",
            str(item.last_step),
            one_line(item.prompt, PROMPT_WIDTH),
        ]
        for item in overview.top_frontier
    ]
    zones = overview.difficulty.zones
    print(
        f"run {overview.run.name}: {zones.frontier} frontier problems of "
        f"{overview.difficulty.problems}; the {len(rows)} with the largest weight"
    )
    print(format_table(["PROBLEM", "PASS", "WEIGHT", "K/N", "STEP", "PROMPT"], rows))
    return 0


@guarded
def create_run_command(args: argparse.Namespace) -> int:
    kernel = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta)) if v is not None}
    estimator = {
        k: v
        for k, v in (
            ("kind", args.estimator),
            ("window", args.window),
            ("half_life_steps", args.half_life),
        )
        if v is not None
    }
    with client(args) as paced:
        run = paced.create_run(
            args.run, args.dataset, kernel=kernel or None, estimator=estimator or None
        )
    if args.json:
        print_json(run)
        return 0
    est = run.estimator
    print(
        f"created run {run.name} on dataset {run.dataset}: w(p) = p^{run.kernel.alpha:g} "
        f"(1-p)^{run.kernel.beta:g}, estimator {est.kind}, window {est.window}"
    )
    if run.token:
        print(f"run token (shown only this once): {run.token}")
    return 0

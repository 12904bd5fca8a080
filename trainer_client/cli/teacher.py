"""`paced teacher`: build the built-in task and print what it measured."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from trainer_client.tasks.arithmetic.build import TaskArtifacts, prepare


def _format_levels(per_level: dict) -> str:
    return "  ".join(f"L{level}={accuracy:.0%}" for level, accuracy in per_level.items())


def summary_lines(artifacts: TaskArtifacts) -> list[str]:
    meta = artifacts.metadata
    teacher, student, zones = meta["teacher"], meta["student_init"], meta["zones"]
    source = "cache" if artifacts.from_cache else "built"
    return [
        f"task in {artifacts.workdir} ({source}, config {artifacts.config_hash})",
        f"teacher accuracy per level: {_format_levels(teacher['eval']['per_level'])}",
        f"teacher held-out skill accuracy: {teacher['heldout_skill']['accuracy']:.0%}",
        f"student accuracy per level: {_format_levels(student['eval']['per_level'])}",
        f"student held-out skill accuracy: {student['heldout_skill']['accuracy']:.0%}",
        "student initial zones (K={k}, T={t}): mastered {m:.0%}  frontier {f:.0%}  "
        "intractable {i:.0%}".format(
            k=meta["config"]["k"],
            t=meta["config"]["temperature"],
            m=zones["mastered"],
            f=zones["frontier"],
            i=zones["intractable"],
        ),
        f"prepare time: {meta['timings_s']['total']:.1f} s ({meta['timings_s']})",
    ]


def main_teacher(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paced teacher",
        description="Train the built-in task's teacher and warm up its student (cached).",
    )
    parser.add_argument("--workdir", required=True, help="where the artefacts are written")
    parser.add_argument("--quick", action="store_true", help="small, fast variant (tests, CI)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # Under `paced` the root logger is already set up (warnings only): the build's progress
    # lines are what this command is for, so its own loggers speak at INFO.
    logging.getLogger("trainer_client").setLevel(logging.INFO)
    artifacts = prepare(args.workdir, seed=args.seed, quick=args.quick)
    for line in summary_lines(artifacts):
        print(line)
    return 0

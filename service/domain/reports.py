"""What the dashboard and the CLI read, typed: a run's history and overview, the runs
overview, a comparison of runs and one problem's history (the response bodies of
service/api/history.py and service/api/overview.py; see domain/views.py for why the domain
owns them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from service.domain.views import Difficulty, ProblemOut, ProblemStatsOut, RunOut, View, Zones

# ---- one run ----------------------------------------------------------------------------------


class HistoryPoint(View):
    step: int
    zones: Zones
    mean_pass_rate: float | None
    mean_weight: float
    effective_problems: float
    created_at: datetime


class HistoryOut(View):
    items: list[HistoryPoint]


class ProblemSummary(View):
    problem_id: str
    attempts: float  # effective (half-life discounted) counts, as the weights use them
    successes: float
    pass_rate: float
    weight: float
    last_step: int
    prompt: str  # cut to the first 2,000 characters (prompt_truncated says so)
    prompt_truncated: bool
    answer: str | None


class KernelCurve(View):
    """The run's w(p), for drawing: the dashboard plots it instead of recomputing it."""

    p: list[float] = Field(description="201 evenly spaced pass rates from 0 to 1")
    w: list[float] = Field(description="w(p) = p^alpha (1-p)^beta at each p")
    at_bins: list[float] = Field(description="w at the centre of each difficulty histogram bin")


class Overview(View):
    run: RunOut
    difficulty: Difficulty
    mean_pass_rate: float | None
    top_frontier: list[ProblemSummary]
    recently_mastered: list[ProblemSummary]
    kernel_curve: KernelCurve


# ---- across runs ------------------------------------------------------------------------------


class RunSummary(View):
    run: RunOut
    latest: HistoryPoint | None = Field(
        description="The run's newest history snapshot; null before its first outcomes."
    )
    rollouts: int | None = Field(
        None,
        description="Graded attempts posted to the run, all problems together (rollouts=true "
        "asks for it; null otherwise).",
    )
    errored_rollouts: int | None = Field(
        None, description="Errored or timed-out attempts, likewise (not in `rollouts`)."
    )


class RunsSummary(View):
    items: list[RunSummary]


class ComparedRun(View):
    run: RunOut
    difficulty: Difficulty
    mean_pass_rate: float | None
    history: list[HistoryPoint]


class Difference(View):
    problem_id: str
    prompt: str  # cut to the first 2,000 characters (prompt_truncated says so)
    prompt_truncated: bool
    answer: str | None
    pass_rates: list[float] = Field(description="k/n in the pair's first and second run")
    attempts: list[float] = Field(description="effective attempts in each run of the pair")
    difference: float = Field(description="first run's pass rate minus the second's")


class Comparison(View):
    dataset: str
    runs: list[ComparedRun]
    pair: list[str]
    differences: list[Difference]


# ---- one problem ------------------------------------------------------------------------------


class StepOutcomes(View):
    step: int | None = Field(description="null for outcomes posted without a step")
    attempts: int
    successes: int
    pass_rate: float
    outcomes: int = Field(description="outcome entries (requests) that step")
    last_accepted_at: datetime


class ProblemHistory(View):
    problem: ProblemOut
    stats: ProblemStatsOut
    steps: list[StepOutcomes]
    complete: bool = Field(
        description="false when the run's log was too long to scan whole: older steps missing"
    )

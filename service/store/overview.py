"""Reads behind the runs overview and the run comparison: a few statements whatever the
number of runs (never one query per run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.orm import Session

from service.models import Dataset, ErroredAttempts, OutcomeBatch, ProblemStats, Run, RunHistory
from service.store.history import SNAPSHOT_FIELDS as FIELDS
from service.store.outcome_log import DTYPES

LIKE_ESCAPE = "\\"


def glob_to_like(pattern: str) -> str:
    """A name glob (`*` = any run of characters) as a LIKE pattern, other wildcards escaped."""
    escaped = (
        pattern.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return escaped.replace("*", "%")


def name_matches(session: Session, name_glob: str) -> ColumnElement[bool]:
    """Run names matching the glob, case-sensitively as names are: SQLite's LIKE ignores
    ASCII case, so there it is SQLite's own GLOB (`*` means the same; the glob's alphabet,
    service/api/schemas.NAME_GLOB, has none of GLOB's other wildcards `?` and `[`)."""
    if session.get_bind().dialect.name == "sqlite":
        return Run.name.op("GLOB", is_comparison=True)(name_glob)
    return Run.name.like(glob_to_like(name_glob), escape=LIKE_ESCAPE)


def runs_with_latest_snapshot(
    session: Session, dataset: str | None = None, name_glob: str | None = None
) -> list[tuple[Run, str, RunHistory | None]]:
    """Every run (optionally of one dataset, names matching a glob) with its dataset name and
    its newest history snapshot (None before the first outcomes), in one statement.

    The newest snapshot is found per run by max(step) over the (run_id, step) unique index.
    """
    latest = (
        select(RunHistory.run_id, func.max(RunHistory.step).label("step"))
        .group_by(RunHistory.run_id)
        .subquery()
    )
    stmt = (
        select(Run, Dataset.name, RunHistory)
        .join(Dataset, Dataset.id == Run.dataset_id)
        .outerjoin(latest, latest.c.run_id == Run.id)
        .outerjoin(
            RunHistory, (RunHistory.run_id == latest.c.run_id) & (RunHistory.step == latest.c.step)
        )
        .order_by(Run.name)
    )
    if dataset is not None:
        stmt = stmt.where(Dataset.name == dataset)
    if name_glob is not None:
        stmt = stmt.where(name_matches(session, name_glob))
    return [(run, ds, snap) for run, ds, snap in session.execute(stmt)]


def rollouts_of_runs(session: Session, run_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """run id -> (graded attempts, errored attempts) over all its problems: one aggregate
    per table (a scan of the runs' rows: asked for, not part of every listing)."""
    if not run_ids:
        return {}
    graded = session.execute(
        select(ProblemStats.run_id, func.sum(ProblemStats.total_attempts))
        .where(ProblemStats.run_id.in_(list(run_ids)))
        .group_by(ProblemStats.run_id)
    )
    errored_rows = session.execute(
        select(ErroredAttempts.run_id, func.sum(ErroredAttempts.errored))
        .where(ErroredAttempts.run_id.in_(list(run_ids)))
        .group_by(ErroredAttempts.run_id)
    )
    errored = {run_id: n for run_id, n in errored_rows}
    totals = {run_id: (int(n or 0), int(errored.get(run_id) or 0)) for run_id, n in graded}
    for run_id, n in errored.items():
        totals.setdefault(run_id, (0, int(n or 0)))
    return totals


def runs_by_names(session: Session, names: Sequence[str]) -> list[tuple[Run, str]]:
    """The named runs that exist, with their dataset names (one statement)."""
    stmt = (
        select(Run, Dataset.name)
        .join(Dataset, Dataset.id == Run.dataset_id)
        .where(Run.name.in_(list(names)))
    )
    return [(run, ds) for run, ds in session.execute(stmt)]


def history_of_runs(session: Session, run_ids: Sequence[int]) -> list[Row]:
    """Snapshots of several runs, ordered by run and step (one statement). Rows with the
    columns' names, not ORM objects: building 2,560 RunHistory objects (5 runs at the
    512-point cap) cost ~90 ms, most of a comparison's time outside numpy."""
    columns = [RunHistory.run_id, RunHistory.step, *(getattr(RunHistory, f) for f in FIELDS)]
    stmt = (
        select(*columns)
        .where(RunHistory.run_id.in_(list(run_ids)))
        .order_by(RunHistory.run_id, RunHistory.step)
    )
    return list(session.execute(stmt))


def outcomes_of_problem(
    session: Session, run_id: int, problem_id: int, max_outcomes: int, page: int = 256
) -> tuple[dict[str, np.ndarray], bool]:
    """The outcomes one problem received in a run, newest request first, read from the
    packed log; returns (columns attempts, successes, steps, created_at as epoch seconds,
    version) and whether the whole log was scanned.

    The log has no per-problem index (one row per request, see models.OutcomeBatch), so this
    scans its problem_ids columns newest first and stops after ``max_outcomes`` entries:
    bounded work on a huge run, complete history on a normal one. Only the rows that hold
    the problem are fetched whole.
    """
    found: dict[str, list] = {"attempts": [], "successes": [], "steps": [], "version": []}
    found_times: list[float] = []
    scanned = 0
    before: tuple[int, int] | None = None  # (version, id) of the last row seen
    while True:
        stmt = (
            select(
                OutcomeBatch.id, OutcomeBatch.version, OutcomeBatch.count, OutcomeBatch.problem_ids
            )
            .where(OutcomeBatch.run_id == run_id)
            .order_by(OutcomeBatch.version.desc(), OutcomeBatch.id.desc())
            .limit(page)
        )
        if before is not None:
            version, row_id = before
            stmt = stmt.where(
                (OutcomeBatch.version < version)
                | ((OutcomeBatch.version == version) & (OutcomeBatch.id < row_id))
            )
        rows = session.execute(stmt).all()
        hits: dict[int, np.ndarray] = {}
        for row_id, version, count, blob in rows:
            positions = np.flatnonzero(
                np.frombuffer(blob, dtype=DTYPES["problem_ids"]) == problem_id
            )
            if len(positions):
                hits[row_id] = positions
            scanned += count
            before = (version, row_id)
        if hits:
            detail = select(
                OutcomeBatch.id,
                OutcomeBatch.version,
                OutcomeBatch.attempts,
                OutcomeBatch.successes,
                OutcomeBatch.steps,
                OutcomeBatch.created_at,
            ).where(OutcomeBatch.id.in_(list(hits)))
            by_id = {r[0]: r for r in session.execute(detail)}
            for row_id in hits:  # keep newest-first order
                _, version, att, succ, steps, created = by_id[row_id]
                at = hits[row_id]
                found["attempts"].append(np.frombuffer(att, dtype=DTYPES["attempts"])[at])
                found["successes"].append(np.frombuffer(succ, dtype=DTYPES["successes"])[at])
                found["steps"].append(np.frombuffer(steps, dtype=DTYPES["steps"])[at])
                found["version"].append(np.full(len(at), version, dtype=np.int64))
                found_times.extend([created.timestamp()] * len(at))
        if len(rows) < page:
            complete = True
            break
        if scanned >= max_outcomes:
            complete = False
            break
    columns = {
        name: np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
        for name, parts in found.items()
    }
    columns["created_at"] = np.asarray(found_times, dtype=np.float64)
    return columns, complete

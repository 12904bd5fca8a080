"""The problem_priors table (migration 0012), beside service/models.py, which imports it so that
it is part of Base's metadata (Alembic's check, the tests' wipe)."""

from __future__ import annotations

from sqlalchemy import Double
from sqlalchemy.orm import Mapped, mapped_column

from service.models import Base, PerRunProblem


class ProblemPrior(PerRunProblem, Base):
    """A problem's prior in a run, as Beta pseudo-counts (curriculum/priors.py): what an
    uploaded profile (a pass rate worth `attempts` attempts) or another run's estimates start
    the problem from. The index adds them to problem_stats' counts; they are kept apart so
    that the views can say what part of a count is prior."""

    __tablename__ = "problem_priors"

    attempts: Mapped[float] = mapped_column(Double)
    successes: Mapped[float] = mapped_column(Double)

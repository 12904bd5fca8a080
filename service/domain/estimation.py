"""Build the pure-core estimator for a stored run."""

from __future__ import annotations

from service.curriculum.estimators import Estimator
from service.domain.runs import RunRef
from service.models import Run


def estimator_for(run: Run | RunRef) -> Estimator:
    return Estimator(run.kernel, run.estimator)

"""Build the pure-core estimator for a stored run."""

from __future__ import annotations

from service.curriculum.estimators import Estimator, EstimatorConfig
from service.curriculum.kernels import KernelConfig
from service.domain.runs import RunRef
from service.models import Run


def estimator_for(run: Run | RunRef) -> Estimator:
    return Estimator(
        KernelConfig(alpha=run.kernel_alpha, beta=run.kernel_beta),
        EstimatorConfig(
            kind=run.estimator_kind,  # type: ignore[arg-type]
            prior_alpha=run.prior_alpha,
            prior_beta=run.prior_beta,
            half_life_steps=run.half_life_steps,
            window=run.estimator_window,  # type: ignore[arg-type]
        ),
    )

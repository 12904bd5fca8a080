"""Pure curriculum core (numpy/scipy only): kernels, estimators, sum-tree sampling index."""

from service.curriculum.estimators import (
    ZONE_NAMES,
    Estimator,
    EstimatorConfig,
    merge_factors,
    merge_outcome,
    zones,
)
from service.curriculum.index import SampleResult, SamplingIndex
from service.curriculum.kernels import KernelConfig
from service.curriculum.sumtree import SumTree

__all__ = [
    "ZONE_NAMES",
    "Estimator",
    "EstimatorConfig",
    "KernelConfig",
    "SampleResult",
    "SamplingIndex",
    "SumTree",
    "merge_factors",
    "merge_outcome",
    "zones",
]

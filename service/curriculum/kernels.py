"""The PACED weighting kernel w(p) = p^alpha (1-p)^beta and its expectation under a Beta law."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln


@dataclass(frozen=True)
class KernelConfig:
    """Exponents of the Beta kernel; the paper's default alpha = beta = 1 gives p(1-p)."""

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        # The one rule, the API's (Kernel: gt=0, finite) and the client's too: a zero exponent
        # would give solved or hopeless problems full weight, a negative one infinite weight.
        if not (0 < self.alpha < math.inf and 0 < self.beta < math.inf):
            raise ValueError(
                f"kernel exponents must be finite and > 0, got {self.alpha}, {self.beta}"
            )


def beta_kernel(p: np.ndarray, kernel: KernelConfig) -> np.ndarray:
    """w(p) = p^alpha (1-p)^beta for p in [0, 1] (p is clipped: float counts can overshoot)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    w: np.ndarray = np.power(p, kernel.alpha) * np.power(1.0 - p, kernel.beta)
    return w


def kernel_curve(
    kernel: KernelConfig, edges: list[float], points: int = 201
) -> dict[str, list[float]]:
    """What the dashboard draws: w(p) on `points` evenly spaced p in [0, 1], and at the centre
    of each histogram bin given by `edges` (so the browser never restates the kernel)."""
    p = np.linspace(0.0, 1.0, points)
    bounds = np.asarray(edges, dtype=np.float64)
    centres = (bounds[:-1] + bounds[1:]) / 2.0
    return {
        "p": p.tolist(),
        "w": beta_kernel(p, kernel).tolist(),
        "at_bins": beta_kernel(centres, kernel).tolist(),
    }


def expected_kernel(a: np.ndarray, b: np.ndarray, kernel: KernelConfig) -> np.ndarray:
    """E[p^alpha (1-p)^beta] for p ~ Beta(a, b), in closed form B(a+alpha, b+beta) / B(a, b).

    Computed in log space (betaln) so that large counts neither overflow nor lose precision.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w: np.ndarray = np.exp(betaln(a + kernel.alpha, b + kernel.beta) - betaln(a, b))
    return w

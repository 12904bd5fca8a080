"""Pass rates predicted for the current student: the "predicted" estimator (pure core).

A problem measured at step s with k of n has, for the student of step s, the pass rate k/n.
The student has trained since. The model: on the logit scale every problem of a zone moves
with the student by the same amount, logit p_j(t) = logit p_j(s) + theta_z(t) - theta_z(s),
where z is the zone the problem was in when measured (problems the student never solved move
differently from those at its frontier, so each zone has its own trajectory theta_z).

Evidence for theta: problems measured twice. A problem's two newest rounds (steps s1 < s2,
counts summed per step) give an observation theta_z(s2) - theta_z(s1) ~ l2 - l1 (smoothed
logits), weighted by the inverse of its binomial variance. theta_z is the weighted least-
squares fit of all such observations plus a random-walk prior between consecutive steps
(theta_z(first step) = 0): a Gaussian smoother over steps. The prediction for problem j at
step T is its latest pass rate plus the change the fit predicts for it:

    p_hat = k/n + sigmoid(l + theta_z(T) - theta_z(s)) - sigmoid(l),   clipped to [0, 1]

so without drift (or for a problem measured at T) it is exactly k/n, as window "latest".

Updates are O(1) per outcome: a problem keeps its two newest rounds (six numbers), and the
fit's sufficient statistics are sums per (zone, s1, s2) that an outcome changes by retracting
its problem's old observation and adding the new one. The state is order-independent (the
two newest rounds of each problem, whatever the arrival order), so replaying outcomes in any
order, or computing the statistics directly from per-step sums (`direct_statistics`, the rule
stated once more without increments), gives the same fit: the property tests check both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

NO_STEP = -1
# Zones of a measured round, as in estimators.zones (unseen rounds do not exist here).
DRIFT_ZONES: tuple[str, ...] = ("intractable", "frontier", "mastered")
# An edge key: (zone of the older round, its step, the newer round's step).
EdgeKey = tuple[int, int, int]


@dataclass(frozen=True)
class DriftConfig:
    """smoothing: pseudo-successes and pseudo-failures added to a round before its logit is
    taken (0.5: Jeffreys), so k = 0 and k = n have finite logits. step_variance: the random-
    walk prior's variance of theta per step (0.01: a standard deviation of 0.1 logit per step,
    0.7 over 50 steps), which ties steps with little evidence to their neighbours."""

    smoothing: float = 0.5
    step_variance: float = 0.01

    def __post_init__(self) -> None:
        if not self.smoothing > 0:
            raise ValueError("smoothing must be > 0")
        if not self.step_variance > 0:
            raise ValueError("step_variance must be > 0")


def round_zone(attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
    """0 intractable (k = 0), 1 frontier, 2 mastered (k = n), per round (int8)."""
    zone = np.ones(np.shape(attempts), dtype=np.int8)
    zone[successes >= attempts] = 2
    zone[successes <= 0] = 0
    return zone


def smoothed_logit(attempts: np.ndarray, successes: np.ndarray, c: float) -> np.ndarray:
    logit: np.ndarray = np.log(successes + c) - np.log(attempts - successes + c)
    return logit


def logit_variance(attempts: np.ndarray, successes: np.ndarray, c: float) -> np.ndarray:
    """The delta-method variance of a smoothed binomial logit: 1 / (n' p' (1 - p'))."""
    n = attempts + 2 * c
    p = (successes + c) / n
    variance: np.ndarray = 1.0 / (n * p * (1.0 - p))
    return variance


@dataclass(frozen=True)
class Trajectories:
    """The fitted theta_z at the knots (sorted steps), one row per zone; linear in between,
    flat beyond the ends."""

    steps: np.ndarray  # int64, sorted, distinct
    theta: np.ndarray  # float64, shape (3, len(steps))

    def at(self, zone: np.ndarray, step: np.ndarray) -> np.ndarray:
        out = np.zeros(np.shape(step), dtype=np.float64)
        if self.steps.size == 0:
            return out
        for z in range(len(DRIFT_ZONES)):
            mask = zone == z
            if mask.any():
                out[mask] = np.interp(step[mask], self.steps, self.theta[z])
        return out


class DriftModel:
    """The per-problem round state and the fit's sufficient statistics of one run."""

    def __init__(self, size: int, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.latest_step = np.full(size, NO_STEP, dtype=np.int64)
        self.latest_n = np.zeros(size)
        self.latest_k = np.zeros(size)
        self.prev_step = np.full(size, NO_STEP, dtype=np.int64)
        self.prev_n = np.zeros(size)
        self.prev_k = np.zeros(size)
        # (zone, s1, s2) -> [observations, sum of weights, sum of weight * logit change]
        self.edges: dict[EdgeKey, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        self._fit: Trajectories | None = None

    @property
    def size(self) -> int:
        return int(self.latest_step.size)

    def grow(self, size: int) -> None:
        """Room for problems appended to the dataset (slots keep their order)."""
        extra = size - self.size
        if extra <= 0:
            return
        self.latest_step = np.concatenate([self.latest_step, np.full(extra, NO_STEP)])
        self.prev_step = np.concatenate([self.prev_step, np.full(extra, NO_STEP)])
        for name in ("latest_n", "latest_k", "prev_n", "prev_k"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra)]))

    # ---- updates -----------------------------------------------------------------------------

    def observe(
        self, slots: np.ndarray, attempts: np.ndarray, successes: np.ndarray, steps: np.ndarray
    ) -> None:
        """Fold one request's outcomes in (a slot may appear several times, at any steps)."""
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size == 0:
            return
        attempts = np.asarray(attempts, dtype=np.float64)
        successes = np.asarray(successes, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        # Sum per (slot, step), then apply the steps in increasing order: within one step a
        # slot occurs once, so each application is one vectorised pass.
        keys = np.stack([steps, slots])
        unique, inverse = np.unique(keys, axis=1, return_inverse=True)
        inverse = inverse.reshape(-1)
        n_sum = np.bincount(inverse, weights=attempts, minlength=unique.shape[1])
        k_sum = np.bincount(inverse, weights=successes, minlength=unique.shape[1])
        for step in np.unique(unique[0]):
            at = unique[0] == step
            self._apply(unique[1][at], n_sum[at], k_sum[at], int(step))
        self._fit = None

    def _apply(self, slots: np.ndarray, n: np.ndarray, k: np.ndarray, step: int) -> None:
        self._edges_of(slots, sign=-1.0)
        latest, prev = self.latest_step[slots], self.prev_step[slots]
        newer = step > latest  # the new round becomes the latest, the latest the previous
        same_latest = step == latest
        between = (step < latest) & (step > prev)  # a new previous round
        same_prev = (step == prev) & ~same_latest
        s = slots[newer]
        self.prev_step[s], self.prev_n[s], self.prev_k[s] = (
            self.latest_step[s],
            self.latest_n[s],
            self.latest_k[s],
        )
        self.latest_step[s], self.latest_n[s], self.latest_k[s] = step, n[newer], k[newer]
        s = slots[same_latest]
        self.latest_n[s] += n[same_latest]
        self.latest_k[s] += k[same_latest]
        s = slots[between]
        self.prev_step[s], self.prev_n[s], self.prev_k[s] = step, n[between], k[between]
        s = slots[same_prev]
        self.prev_n[s] += n[same_prev]
        self.prev_k[s] += k[same_prev]
        # (an older round than both is ignored: it is no longer one of the two newest)
        self._edges_of(slots, sign=1.0)

    def _edges_of(self, slots: np.ndarray, sign: float) -> None:
        """Add (sign 1) or retract (sign -1) the observations of these problems."""
        twice = slots[self.prev_step[slots] != NO_STEP]
        if twice.size == 0:
            return
        keys, weights, changes = observations(
            self.prev_n[twice],
            self.prev_k[twice],
            self.prev_step[twice],
            self.latest_n[twice],
            self.latest_k[twice],
            self.latest_step[twice],
            self.config.smoothing,
        )
        add_to_edges(self.edges, keys, weights, changes, sign)

    # ---- the fit and the predictions ---------------------------------------------------------

    def trajectories(self, now: int) -> Trajectories:
        if self._fit is None or (self._fit.steps.size and self._fit.steps[-1] < now):
            self._fit = fit(self.edges, self._knots(now), self.config.step_variance)
        return self._fit

    def _knots(self, now: int) -> np.ndarray:
        measured = np.concatenate([self.latest_step, self.prev_step])
        steps = np.unique(measured[measured != NO_STEP])
        if steps.size and now > steps[-1]:
            steps = np.append(steps, now)
        return steps

    def predicted_pass_rates(self, now: int) -> np.ndarray:
        """p_hat per problem for the student at step `now` (NaN where never measured)."""
        n, k, step = self.latest_n, self.latest_k, self.latest_step
        seen = step != NO_STEP
        out = np.full(self.size, np.nan)
        if not seen.any():
            return out
        n, k, step = n[seen], k[seen], step[seen]
        zone = round_zone(n, k)
        curves = self.trajectories(now)
        shift = curves.at(zone, np.full(step.shape, now)) - curves.at(zone, step)
        logit = smoothed_logit(n, k, self.config.smoothing)
        change = _sigmoid(logit + shift) - _sigmoid(logit)
        out[seen] = np.clip(k / n + change, 0.0, 1.0)
        return out


def observations(
    n1: np.ndarray,
    k1: np.ndarray,
    s1: np.ndarray,
    n2: np.ndarray,
    k2: np.ndarray,
    s2: np.ndarray,
    c: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per problem measured twice: its edge key (zone of round 1, s1, s2), the observation's
    weight (inverse variance of the logit change) and the logit change."""
    zone = round_zone(n1, k1)
    change = smoothed_logit(n2, k2, c) - smoothed_logit(n1, k1, c)
    weight = 1.0 / (logit_variance(n1, k1, c) + logit_variance(n2, k2, c))
    keys = np.stack([zone.astype(np.int64), s1, s2], axis=1)
    return keys, weight, change


def add_to_edges(
    edges: dict[EdgeKey, list[float]],
    keys: np.ndarray,
    weights: np.ndarray,
    changes: np.ndarray,
    sign: float,
) -> None:
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse, minlength=len(unique))
    w = np.bincount(inverse, weights=weights, minlength=len(unique))
    wd = np.bincount(inverse, weights=weights * changes, minlength=len(unique))
    for row, key in enumerate(map(tuple, unique.tolist())):
        entry = edges[key]  # type: ignore[index]
        entry[0] += sign * count[row]
        entry[1] += sign * w[row]
        entry[2] += sign * wd[row]
        if entry[0] <= 0:  # no observation left: drop the rounding residue with it
            del edges[key]  # type: ignore[arg-type]


def fit(edges: dict[EdgeKey, list[float]], knots: np.ndarray, step_variance: float) -> Trajectories:
    """theta_z at the knots: minimise sum_e w_e (theta(s2) - theta(s1) - d_e)^2 plus the
    random walk sum_i (theta(t_i+1) - theta(t_i))^2 / (q gap_i), with theta(t_0) = 0."""
    m = int(knots.size)
    theta = np.zeros((len(DRIFT_ZONES), m))
    if m < 2:
        return Trajectories(knots, theta)
    position = {int(step): i for i, step in enumerate(knots.tolist())}
    walk = 1.0 / (step_variance * np.diff(knots).astype(np.float64))
    for zone in range(len(DRIFT_ZONES)):
        links = [(i, i + 1, float(w), 0.0) for i, w in enumerate(walk.tolist())]
        links += [
            (position[s1], position[s2], w, wd / w)
            for (z, s1, s2), (_, w, wd) in edges.items()
            if z == zone and s1 in position and s2 in position and w > 0
        ]
        theta[zone, 1:] = _solve_anchored(links, m)
    return Trajectories(knots, theta)


def _solve_anchored(links: list[tuple[int, int, float, float]], m: int) -> np.ndarray:
    """Least squares over sum w (x_j - x_i - d)^2 with x_0 = 0: the normal equations are a
    weighted graph Laplacian; dropping x_0's row and column makes them positive definite."""
    i, j, w, d = (np.asarray(column) for column in zip(*links, strict=True))
    i, j = i.astype(np.int64), j.astype(np.int64)
    rows = np.concatenate([i, j, i, j])
    cols = np.concatenate([i, j, j, i])
    vals = np.concatenate([w, w, -w, -w])
    rhs = np.bincount(j, weights=w * d, minlength=m) - np.bincount(i, weights=w * d, minlength=m)
    matrix = coo_matrix((vals, (rows, cols)), shape=(m, m)).tocsc()[1:, 1:]
    solution: np.ndarray = np.atleast_1d(spsolve(matrix, rhs[1:]))
    return solution


def direct_statistics(
    slots: np.ndarray, attempts: np.ndarray, successes: np.ndarray, steps: np.ndarray, c: float
) -> dict[EdgeKey, list[float]]:
    """The fit's statistics from the whole outcome set at once, without increments: per
    problem, counts summed per step, its two newest steps paired. The reference the
    incremental updates are tested against."""
    edges: dict[EdgeKey, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    rounds: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for slot, n, k, step in zip(
        slots.tolist(), attempts.tolist(), successes.tolist(), steps.tolist(), strict=True
    ):
        rounds[slot][step][0] += n
        rounds[slot][step][1] += k
    pairs = []
    for per_step in rounds.values():
        if len(per_step) >= 2:
            older, newer = sorted(per_step)[-2:]
            pairs.append((*per_step[older], older, *per_step[newer], newer))
    if pairs:
        table = np.asarray(pairs, dtype=np.float64)
        steps_1, steps_2 = table[:, 2].astype(np.int64), table[:, 5].astype(np.int64)
        keys, weights, changes = observations(
            table[:, 0], table[:, 1], steps_1, table[:, 3], table[:, 4], steps_2, c
        )
        add_to_edges(edges, keys, weights, changes, 1.0)
    return edges


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out

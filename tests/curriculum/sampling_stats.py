"""Exact distributions of successive sampling and a pooled chi-square test (test helper)."""

import itertools
from collections import Counter

import numpy as np
from scipy import stats


def successive_sampling_probs(weights: dict[int, float], size: int) -> dict[tuple, float]:
    """P(ordered draw) when each next item is picked with probability ∝ weight among the rest."""
    probs = {}
    for seq in itertools.permutations(weights, size):
        p, left = 1.0, sum(weights.values())
        for item in seq:
            p *= weights[item] / left
            left -= weights[item]
        probs[seq] = p
    return probs


def unordered(probs: dict[tuple, float]) -> dict[frozenset, float]:
    out: Counter = Counter()
    for seq, p in probs.items():
        out[frozenset(seq)] += p
    return dict(out)


def chisquare_pvalue(observed: Counter, probs: dict, draws: int) -> float:
    """Chi-square goodness of fit; cells expected under 5 are pooled into one cell."""
    assert set(observed) <= set(probs), f"impossible outcomes drawn: {set(observed) - set(probs)}"
    big = [c for c, p in probs.items() if p * draws >= 5]
    small = [c for c in probs if c not in big]
    obs = [observed[c] for c in big]
    exp = [probs[c] * draws for c in big]
    if small:
        obs.append(sum(observed[c] for c in small))
        exp.append(sum(probs[c] for c in small) * draws)
    exp = np.array(exp) * (sum(obs) / sum(exp))  # renormalise away float rounding
    return stats.chisquare(obs, exp).pvalue

"""Numerical checks behind convexity.md: chords above the graph and Jensen's inequality."""
from __future__ import annotations

from typing import Callable

import numpy as np

# A scalar function applied elementwise to a numpy array.
ScalarFn = Callable[[np.ndarray], np.ndarray]


def chord_gap(f: ScalarFn, a: float, b: float, lambdas: np.ndarray) -> np.ndarray:
    """λf(a) + (1-λ)f(b) - f(λa + (1-λ)b) for each λ; every entry >= 0 iff the chord lies above f.

    lambdas: (n,) in [0, 1] -> (n,). For a convex f the gap is never negative.
    """
    lam = np.asarray(lambdas, dtype=np.float64)
    return lam * f(np.float64(a)) + (1 - lam) * f(np.float64(b)) - f(lam * a + (1 - lam) * b)


def jensen_gap(f: ScalarFn, xs: np.ndarray, weights: np.ndarray) -> float:
    """E[f(X)] - f(E[X]) for a discrete X taking values xs with probabilities weights.

    Jensen's inequality: the gap is >= 0 for every convex f. xs, weights: (n,); weights are
    normalised to sum to one.
    """
    xs = np.asarray(xs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if xs.shape != w.shape or w.ndim != 1 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("xs and weights must be 1-D of equal length with non-negative weights")
    w = w / w.sum()
    return float(np.sum(w * f(xs)) - f(np.sum(w * xs)))


def is_convex_set_on_samples(inside: Callable[[np.ndarray], np.ndarray], points: np.ndarray,
                             n_lambdas: int = 11) -> bool:
    """Whether every segment between two member points stays in the set (sampled check).

    inside: (n, 2) -> (n,) bool membership; points: (m, 2) candidate points, members are kept.
    Returns False as soon as a sampled point on a segment between two members falls outside.
    """
    pts = np.asarray(points, dtype=np.float64)
    members = pts[inside(pts)]  # (k, 2)
    lam = np.linspace(0.0, 1.0, n_lambdas)[:, None, None]  # (L, 1, 1)
    a, b = members[:, None, :], members[None, :, :]  # (k, 1, 2), (1, k, 2)
    seg = lam[..., None] * a[None] + (1 - lam[..., None]) * b[None]  # (L, k, k, 2)
    return bool(np.all(inside(seg.reshape(-1, 2))))

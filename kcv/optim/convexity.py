"""Numerical checks behind convexity.md: chords above the graph, Jensen's inequality, below-sets and
the second-order condition (f'' >= 0 in 1-D, a positive semidefinite Hessian in n-D).

The second-order checks evaluate derivatives at sample points, so they can prove a function
nonconvex (a negative curvature found) but only support convexity on the samples they saw.
"""
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


def below_set(f: Callable[[np.ndarray], np.ndarray], b: float) -> Callable[[np.ndarray], np.ndarray]:
    """Membership of S_b = {x : f(x) <= b}: points (n, d) -> (n,) bool, for is_convex_set_on_samples.

    f maps (n, d) -> (n,) (numpy). For a convex f every S_b is convex (convexity.md).
    """
    return lambda points: np.asarray(f(np.asarray(points, dtype=np.float64))) <= b


def _tf():
    import tensorflow as tf  # here, so the numpy-only checks above do not load TensorFlow

    return tf


def second_derivatives(f: Callable, xs: np.ndarray, method: str = "autodiff", h: float = 1e-4) -> np.ndarray:
    """f''(x) at each x of xs (n,) for an elementwise scalar f -> (n,) float64.

    method "autodiff": two nested tf.GradientTapes (f must be written with TensorFlow ops, e.g.
    tf.cos; numpy ops cut the tape and raise ValueError). "finite_difference": the central
    difference (f(x+h) - 2f(x) + f(x-h))/h² with h scaled by max(1, |x|); works for numpy f,
    error about h²·|f⁗|/12 plus float rounding 1e-16·|f|/h².
    """
    xs = np.asarray(xs, dtype=np.float64).reshape(-1)
    if method == "finite_difference":
        step = h * np.maximum(1.0, np.abs(xs))
        fx = lambda v: np.asarray(f(v), dtype=np.float64)  # noqa: E731
        return (fx(xs + step) - 2.0 * fx(xs) + fx(xs - step)) / step**2
    if method != "autodiff":
        raise ValueError(f"method must be 'autodiff' or 'finite_difference', got {method!r}")
    tf = _tf()
    x = tf.constant(xs)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = tf.reduce_sum(f(x))  # elementwise f: d(sum)/dx_i = f'(x_i)
        first = inner.gradient(y, x)
        if first is None:
            raise ValueError("f is not differentiable by TensorFlow (numpy ops?); use method='finite_difference'")
    second = outer.gradient(first, x)
    return np.zeros_like(xs) if second is None else second.numpy()  # None: f'' is 0 (f linear)


def is_convex_1d(f: Callable, interval: tuple[float, float], n: int = 401, tol: float = 1e-6,
                 method: str = "autodiff") -> bool:
    """The second-order condition on n points of [a, b]: every f''(x) >= -tol (f elementwise)."""
    xs = np.linspace(float(interval[0]), float(interval[1]), n)
    return bool(np.all(second_derivatives(f, xs, method=method) >= -tol))


def hessians(f: Callable, points: np.ndarray) -> np.ndarray:
    """The Hessian of f at each point: points (m, d) -> (m, d, d) float64.

    f is a kcv.optim objective written with TensorFlow ops, (..., d) -> (...), so one batched
    call evaluates all points. Rows are independent, so the gradient of Σ_rows ∂f/∂x_i is row by
    row the Hessian's row i: d backward passes (no jacobian, no per-point loop).
    """
    tf = _tf()
    x = tf.constant(np.asarray(points, dtype=np.float64))
    if x.shape.rank != 2:
        raise ValueError(f"points must be (m, d), got shape {tuple(x.shape)}")
    d = int(x.shape[1])
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = tf.reduce_sum(f(x))  # rows are independent: d(sum)/dx_i is row i's gradient
        grad = inner.gradient(y, x)  # (m, d)
        if grad is None:
            raise ValueError("f is not differentiable by TensorFlow (numpy ops?)")
        parts = [tf.reduce_sum(grad[:, i]) for i in range(d)]
    rows = [outer.gradient(part, x) for part in parts]  # each (m, d): H[:, i, :]
    del outer
    zeros = tf.zeros_like(x)
    return tf.stack([zeros if r is None else r for r in rows], axis=1).numpy()  # (m, d, d)


def min_hessian_eigenvalues(f: Callable, points: np.ndarray) -> np.ndarray:
    """The smallest eigenvalue of the (symmetrised) Hessian at each point: (m, d) -> (m,)."""
    hess = hessians(f, points)
    return np.linalg.eigvalsh(0.5 * (hess + np.swapaxes(hess, -1, -2)))[:, 0]


def hessian_psd(f: Callable, points: np.ndarray, tol: float = 1e-6) -> bool:
    """The second-order condition in n-D on sample points: every Hessian eigenvalue >= -tol."""
    return bool(np.all(min_hessian_eigenvalues(f, points) >= -tol))

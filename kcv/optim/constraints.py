"""Constrained optimisation (convexity.md, "Constraints"): the Lagrangian's saddle point, penalties,
projections and projected gradient descent; gradient clipping as a projection.

Convention (the book's): minimise f(x) subject to c_i(x) <= 0, with the Lagrangian
    L(x, α) = f(x) + Σ_i α_i·c_i(x),  α_i >= 0,
whose saddle point (min over x, max over α >= 0) solves the problem; an inactive constraint gets
α_i = 0. The worked example: f(x) = x1² + x2² subject to c(x) = 1 - x1 - x2 <= 0 (x1 + x2 >= 1).
The constraint is active at the optimum, so it is also the equality-constrained problem:
∇_x L = 2x - α·(1, 1) = 0 gives x = (α/2, α/2), and x1 + x2 = 1 gives α* = 1, x* = (0.5, 0.5).

Objectives and constraints are TensorFlow functions (..., d) -> (...) (kcv.optim.functions);
projections are numpy functions of a point (d,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from kcv.optim.autodiff import value_and_gradient
from kcv.optim.functions import Objective
from kcv.optim.gd import newton
from kcv.optim.trajectory import Point, Trajectory, as_point

# (x (d,), α (m,)) -> L () as TensorFlow ops
Lagrangian = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# a point (d,) -> the nearest point of a set, (d,) (numpy)
Projection = Callable[[np.ndarray], np.ndarray]


def sum_of_squares(x: tf.Tensor) -> tf.Tensor:
    """f(x) = ‖x‖² = Σ x_i². x: (..., d) -> (...)."""
    return tf.reduce_sum(x**2, axis=-1)


def halfplane_constraint(x: tf.Tensor) -> tf.Tensor:
    """c(x) = 1 - x1 - x2 (<= 0 means x1 + x2 >= 1). x: (..., 2) -> (...)."""
    return 1.0 - x[..., 0] - x[..., 1]


def lagrangian(f: Objective, constraints: Sequence[Objective]) -> Lagrangian:
    """L(x, α) = f(x) + Σ α_i·c_i(x) for constraints c_i(x) <= 0."""

    def L(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
        return f(x) + tf.add_n([alpha[i] * c(x) for i, c in enumerate(constraints)])

    return L


@dataclass(frozen=True)
class SaddleTrajectory:
    """Iterates of gradient descent on x and ascent on α. Row 0 is the start."""

    xs: np.ndarray  # (steps + 1, d)
    alphas: np.ndarray  # (steps + 1, m)
    ls: np.ndarray  # (steps + 1,) L(x, α) at each iterate

    @property
    def steps(self) -> int:
        return int(self.xs.shape[0]) - 1


def gradient_descent_ascent(L: Lagrangian, x0: Point, alpha0: Point, eta: float, steps: int,
                            nonnegative: bool = True) -> SaddleTrajectory:
    """Simultaneous x <- x - η∇_x L(x, α), α <- max(0, α + η∇_α L(x, α)) (the max only if nonnegative).

    ∇_α L = c(x): α grows while a constraint is violated and shrinks (to 0 at most) while it is
    slack. On the module's example with η < 1 it converges to the saddle point x* = (0.5, 0.5),
    α* = 1 (the linearised update's eigenvalues are 1 - 2η and 1 - η ± iη, of modulus < 1).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x, alpha = as_point(x0), as_point(alpha0)

    @tf.function
    def grads(x: tf.Tensor, alpha: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch([x, alpha])
            value = L(x, alpha)
        gx, ga = tape.gradient(value, [x, alpha])
        return value, gx, ga

    xs, alphas, ls = [x.numpy()], [alpha.numpy()], []
    for _ in range(steps):
        value, gx, ga = grads(x, alpha)
        ls.append(float(value))
        x, alpha = x - eta * gx, alpha + eta * ga
        if nonnegative:
            alpha = tf.maximum(alpha, tf.zeros_like(alpha))
        xs.append(x.numpy())
        alphas.append(alpha.numpy())
    ls.append(float(L(x, alpha)))
    return SaddleTrajectory(np.stack(xs), np.stack(alphas), np.asarray(ls))


def penalized(f: Objective, constraints: Sequence[Objective], weight: float) -> Objective:
    """f(x) + weight·Σ max(0, c_i(x))²: the quadratic penalty of violated constraints."""

    def g(x: tf.Tensor) -> tf.Tensor:
        return f(x) + weight * tf.add_n([tf.maximum(c(x), tf.zeros_like(c(x))) ** 2 for c in constraints])

    return g


def penalty_solution(f: Objective, constraints: Sequence[Objective], weight: float, x0: Point,
                     steps: int = 5) -> np.ndarray:
    """The minimiser of the penalised objective by Newton's method from x0 (d,).

    On the module's example from a violating start the penalised objective is the quadratic
    x1² + x2² + w·(1 - x1 - x2)² there, so one Newton step is exact: x_i = w/(1 + 2w), which
    tends to 0.5 as w grows; 2w·c(x) = 2w/(1 + 2w) estimates the multiplier α* = 1.
    """
    return newton(penalized(f, constraints, weight), x0, eta=1.0, steps=steps).final


def project_ball(x: np.ndarray, radius: float = 1.0, center: np.ndarray | None = None) -> np.ndarray:
    """Proj onto {x' : ‖x' - center‖₂ <= radius}: x itself inside, else the point along the same
    direction from the center at distance radius (the book's "direction kept")."""
    x = np.asarray(x, dtype=np.float64)
    c = np.zeros_like(x) if center is None else np.asarray(center, dtype=np.float64)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    d = x - c
    norm = float(np.linalg.norm(d))
    return x.copy() if norm <= radius else c + d * (radius / norm)


def project_box(x: np.ndarray, lower: Sequence[float] | float, upper: Sequence[float] | float) -> np.ndarray:
    """Proj onto the box lower <= x <= upper (per coordinate): clip each coordinate."""
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    if np.any(lo > hi):
        raise ValueError(f"empty box: lower {lower} > upper {upper}")
    return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


def project_l1_ball(x: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """Proj onto {x' : ‖x'‖₁ <= radius} (the book's "diamond"), by sorting (Duchi et al., 2008).

    Outside the ball the answer is soft thresholding sign(x)·max(|x| - θ, 0) with the θ that
    makes ‖·‖₁ = radius; small coordinates become exactly 0, which is why ℓ1 gives sparse weights.
    (2, 0.5) onto radius 1: θ = 1 gives (1, 0).
    """
    x = np.asarray(x, dtype=np.float64)
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    a = np.abs(x)
    if a.sum() <= radius:
        return x.copy()
    u = np.sort(a)[::-1]  # descending
    css = np.cumsum(u)
    k = np.arange(1, a.size + 1)
    rho = int(np.nonzero(u - (css - radius) / k > 0)[0][-1])
    theta = (css[rho] - radius) / (rho + 1)
    return np.sign(x) * np.maximum(a - theta, 0.0)


def clip_gradient(g: np.ndarray, c: float) -> np.ndarray:
    """The book's gradient clipping g <- g·min(1, c/‖g‖), which is project_ball(g, c)."""
    g = np.asarray(g, dtype=np.float64)
    norm = float(np.linalg.norm(g))
    return g.copy() if norm == 0.0 else g * min(1.0, c / norm)


def projected_gradient_descent(f: Objective, x0: Point, eta: float, steps: int, project: Projection
                               ) -> Trajectory:
    """x <- Proj(x - η∇f(x)); the start is used as given (row 0), every later iterate is feasible."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x = as_point(x0)
    value_and_grad = tf.function(lambda p: value_and_gradient(f, p))
    xs, fs = [x.numpy()], []
    for _ in range(steps):
        value, grad = value_and_grad(x)
        fs.append(float(value))
        x = tf.constant(project((x - eta * grad).numpy()), tf.float64)
        xs.append(x.numpy())
    fs.append(float(f(x)))
    return Trajectory(np.stack(xs), np.asarray(fs), np.full(steps, float(eta)))


def shifted_quadratic(center: Sequence[float] = (2.0, 1.0), a: float = 1.0, b: float = 2.0) -> Objective:
    """f(x) = a·(x1 - c1)² + b·(x2 - c2)²: the book's x1² + 2x2² moved to `center` (outside the unit ball)."""
    c1, c2 = (float(v) for v in center)

    def f(x: tf.Tensor) -> tf.Tensor:
        return a * (x[..., 0] - c1) ** 2 + b * (x[..., 1] - c2) ** 2

    return f

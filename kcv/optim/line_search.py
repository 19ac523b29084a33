"""Backtracking (Armijo) line search along the negative gradient (gd.md's "line search", prose only).

Each update starts from a trial step η0 and multiplies it by β until the Armijo (sufficient
decrease) condition holds:
    f(x - η∇f(x)) <= f(x) - c·η·‖∇f(x)‖²
then takes x <- x - η∇f(x). Started at η0 = 1.1 on f(x) = x², where a fixed η = 1.1 diverges
(10·(-1.2)^10 = 61.917364), it halves once to 0.55 and every update multiplies x by 1 - 2·0.55 = -0.1.
The book's caveat: each trial costs one evaluation of the objective on the whole data set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from kcv.optim.autodiff import value_and_gradient
from kcv.optim.functions import Objective
from kcv.optim.trajectory import Point, Trajectory, as_point


@dataclass(frozen=True)
class LineSearchTrajectory(Trajectory):
    """A Trajectory whose lrs are the accepted step sizes, plus what each search cost."""

    trials: np.ndarray  # (steps,) int: step sizes tried by update i (1 = η0 accepted at once)
    grad_sq: np.ndarray  # (steps,) ‖∇f(x_i)‖² at the point update i left


def armijo_holds(f_x: float, f_new: float, eta: float, grad_sq: float, c: float = 1e-4) -> bool:
    """The sufficient-decrease condition f(x - η∇f) <= f(x) - c·η·‖∇f‖²."""
    return f_new <= f_x - c * eta * grad_sq


def backtracking_line_search(f: Objective, x0: Point, steps: int = 10, eta0: float = 1.0, beta: float = 0.5,
                             c: float = 1e-4, max_trials: int = 60) -> LineSearchTrajectory:
    """Gradient descent with a backtracking line search per update; float64, derivatives by GradientTape.

    eta0 > 0: the first trial step of every search; beta in (0, 1): the shrink factor; c in (0, 1):
    Armijo's constant. If no step of eta0·beta^k (k < max_trials) decreases f enough (only at a
    point where float rounding hides every decrease), the update does not move (η = 0 recorded).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not (eta0 > 0 and math.isfinite(eta0)):
        raise ValueError(f"eta0 must be a finite number > 0, got {eta0}")
    if not 0 < beta < 1 or not 0 < c < 1:
        raise ValueError(f"beta and c must be in (0, 1), got beta={beta}, c={c}")
    x = as_point(x0)
    value_and_grad = tf.function(lambda p: value_and_gradient(f, p))
    value = tf.function(f)
    xs, fs, lrs, trials, grad_sqs = [x.numpy()], [], [], [], []
    for _ in range(steps):
        fx, grad = value_and_grad(x)
        fx, g2 = float(fx), float(tf.reduce_sum(grad * grad))
        eta, accepted = eta0, 0.0
        for k in range(1, max_trials + 1):
            candidate = x - eta * grad
            if armijo_holds(fx, float(value(candidate)), eta, g2, c):
                accepted = eta
                break
            eta *= beta
        else:
            candidate = x
        fs.append(fx)
        lrs.append(accepted)
        trials.append(k)
        grad_sqs.append(g2)
        x = candidate
        xs.append(x.numpy())
    fs.append(float(f(x)))
    return LineSearchTrajectory(np.stack(xs), np.asarray(fs), np.asarray(lrs, dtype=np.float64),
                                np.asarray(trials, dtype=np.int64), np.asarray(grad_sqs))


def log_sum_exp_exercise(x: tf.Tensor) -> tf.Tensor:
    """gd.md's exercise f(x) = log(exp(x) + exp(-2x - 3)), stably. x: (..., 1) -> (...).

    f'(x) = 0 where exp(x) = 2·exp(-2x - 3), i.e. x* = (ln 2 - 3)/3 = -0.768951.
    """
    v = x[..., 0]
    return tf.reduce_logsumexp(tf.stack([v, -2.0 * v - 3.0], axis=-1), axis=-1)

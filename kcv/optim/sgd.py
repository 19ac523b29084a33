"""Stochastic gradient descent with simulated gradient noise and the book's step-size factors (sgd.md).

The book's loop keeps a global counter `t = 1` and each factor function increments it *before*
use, so update 1 uses t = 2: the first factors are exp(-0.2) and 1.2^-0.5. `noisy_sgd` keeps that
counter locally (no globals) and passes t to a pure factor function.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import tensorflow as tf

from kcv.optim.autodiff import value_and_gradient
from kcv.optim.functions import Objective
from kcv.optim.trajectory import Point, Trajectory, as_point

# t (the book's counter, >= 2 when used) -> factor multiplying the base step size.
LrFactor = Callable[[int], float]


def constant_lr(t: int) -> float:
    """lr() = 1 (the book's constant_lr)."""
    del t
    return 1.0


def exponential_lr(t: int, decay: float = 0.1) -> float:
    """exp(-0.1·t) (the book's exponential_lr)."""
    return math.exp(-decay * t)


def polynomial_lr(t: int, beta: float = 0.1, alpha: float = 0.5) -> float:
    """(1 + 0.1·t)^-0.5 (the book's polynomial_lr)."""
    return (1.0 + beta * t) ** (-alpha)


LR_FACTORS: dict[str, LrFactor] = {
    "constant": constant_lr,
    "exponential": exponential_lr,
    "polynomial": polynomial_lr,
}


def noisy_sgd(
    f: Objective,
    x0: Point,
    eta: float = 0.1,
    steps: int = 50,
    lr: LrFactor | str = constant_lr,
    seed: int = 0,
    noise_std: float = 1.0,
) -> Trajectory:
    """x <- x - η·lr(t)·(∇f(x) + ε), ε ~ N(0, noise_std²) per gradient component.

    `lr` is a factor function of the book's counter t (or a name in LR_FACTORS). The noise for all
    steps is drawn up front from a stateless generator keyed by `seed`, so the same seed repeats
    the run exactly and nothing global is touched. Trajectory.lrs holds η·lr(t) per update.
    """
    if isinstance(lr, str):
        if lr not in LR_FACTORS:
            raise ValueError(f"unknown lr factor {lr!r}; valid: {', '.join(LR_FACTORS)}")
        lr = LR_FACTORS[lr]
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x = as_point(x0)
    noise = noise_std * tf.random.stateless_normal(
        (steps, x.shape[0]), seed=[seed, 0], dtype=tf.float64
    )  # (steps, d), row i perturbs update i+1 (x1's noise drawn before x2's, as in the book)
    # One traced function per run: eager tapes cost milliseconds per step, a graph call microseconds.
    value_and_grad = tf.function(lambda p: value_and_gradient(f, p))
    xs, fs, lrs = [x.numpy()], [], []
    t = 1
    for i in range(steps):
        t += 1  # incremented before use, as the book's exponential_lr / polynomial_lr do
        eta_t = eta * lr(t)
        value, grad = value_and_grad(x)
        fs.append(float(value))
        x = x - eta_t * (grad + noise[i])
        xs.append(x.numpy())
        lrs.append(eta_t)
    fs.append(float(f(x)))
    return Trajectory(np.stack(xs), np.asarray(fs), np.asarray(lrs, dtype=np.float64))

"""The book's objective functions, written as TensorFlow ops so autodiff can differentiate them.

Convention: an objective takes `x` of shape (..., d) and returns shape (...). A single point is a
(d,) tensor and gives a scalar; a grid (H, W, d) gives (H, W) values for contour plots.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

Objective = Callable[[tf.Tensor], tf.Tensor]


def square(x: tf.Tensor) -> tf.Tensor:
    """f(x) = x², the 1-D convex example of gd.md. x: (..., 1) -> (...)."""
    return x[..., 0] ** 2


def x_cos_cx(c: float = 0.15 * math.pi) -> Objective:
    """f(x) = x·cos(cx), the book's nonconvex 1-D example (c = 0.15π). x: (..., 1) -> (...)."""

    def f(x: tf.Tensor) -> tf.Tensor:
        return x[..., 0] * tf.cos(tf.constant(c, dtype=x.dtype) * x[..., 0])

    return f


def scaled_cosh(c: float = 0.5) -> Objective:
    """f(x) = cosh(cx), the book's Newton example (c = 0.5). x: (..., 1) -> (...)."""

    def f(x: tf.Tensor) -> tf.Tensor:
        return tf.cosh(tf.constant(c, dtype=x.dtype) * x[..., 0])

    return f


def quadratic_2d(a: float = 1.0, b: float = 2.0) -> Objective:
    """f(x1, x2) = a·x1² + b·x2²; the book's 2-D example is a=1, b=2. x: (..., 2) -> (...)."""

    def f(x: tf.Tensor) -> tf.Tensor:
        return a * x[..., 0] ** 2 + b * x[..., 1] ** 2

    return f


# The book's f_2d: x1² + 2·x2² (gd.md, sgd.md).
f_2d: Objective = quadratic_2d(1.0, 2.0)
# An ill-conditioned quadratic (momentum.md's 0.1·x1² + 2·x2²): where diagonal preconditioning helps.
ill_conditioned_2d: Objective = quadratic_2d(0.1, 2.0)

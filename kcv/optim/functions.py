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


def second_order_examples() -> tuple[list[tuple[str, Callable[[tf.Tensor], tf.Tensor], tuple[float, float]]],
                                     list[tuple[str, Objective]]]:
    """The book's functions for the second-order condition (convexity.md).

    1-D: (label, elementwise f, interval): 0.5x², cos(πx), exp(0.5x), x³ (on [-2, 2] and on
    [0, 2]), (x+1)(x-1)². 2-D: (label, objective (..., 2) -> (...)): ½‖x‖², x1² + 2x2²,
    0.1x1² + 2x2², x1² + x2²/2, x1² - x2², x1² + 0.5cos(2πx2) (the nonconvex below-set example).
    """
    one_d = [("0.5x²", lambda x: 0.5 * x**2, (-2.0, 2.0)),
             ("cos(πx)", lambda x: tf.cos(math.pi * x), (-2.0, 2.0)),
             ("exp(0.5x)", lambda x: tf.exp(0.5 * x), (-2.0, 2.0)),
             ("x³", lambda x: x**3, (-2.0, 2.0)),
             ("x³", lambda x: x**3, (0.0, 2.0)),
             ("(x+1)(x-1)²", lambda x: (x + 1) * (x - 1) ** 2, (-2.0, 2.0))]
    two_d = [("½‖x‖²", lambda p: 0.5 * tf.reduce_sum(p**2, axis=-1)),
             ("x1² + 2x2²", f_2d),
             ("0.1x1² + 2x2²", ill_conditioned_2d),
             ("x1² + x2²/2", quadratic_2d(1.0, 0.5)),
             ("x1² - x2²", quadratic_2d(1.0, -1.0)),
             ("x1² + 0.5cos(2πx2)", lambda p: p[..., 0] ** 2 + 0.5 * tf.cos(2 * math.pi * p[..., 1]))]
    return one_d, two_d

"""Gradients and Hessians of scalar objectives by tf.GradientTape (no hand-written derivatives)."""
from __future__ import annotations

import tensorflow as tf

from kcv.optim.functions import Objective


def value_and_gradient(f: Objective, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """f(x) and ∇f(x). x: (d,) -> ((), (d,))."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = f(x)
    return value, tape.gradient(value, x)


def value_gradient_hessian(f: Objective, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """f(x), ∇f(x) and the Hessian ∇²f(x), by nesting two tapes. x: (d,) -> ((), (d,), (d, d))."""
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            value = f(x)
        grad = inner.gradient(value, x)
    hess = outer.jacobian(grad, x)
    return value, grad, hess

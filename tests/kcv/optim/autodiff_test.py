"""Gradients and Hessians by GradientTape against hand derivatives."""
import math

import numpy as np
import tensorflow as tf

from kcv import optim


def test_gradient_and_hessian_of_quadratic():
    # f = x1² + 2·x2² at (-5, -2): ∇f = (2x1, 4x2) = (-10, -8), H = diag(2, 4)
    value, grad, hess = optim.value_gradient_hessian(optim.f_2d, tf.constant([-5.0, -2.0], tf.float64))
    assert float(value) == 33.0
    np.testing.assert_allclose(grad.numpy(), [-10.0, -8.0])
    np.testing.assert_allclose(hess.numpy(), [[2.0, 0.0], [0.0, 4.0]])


def test_second_derivative_of_x_cos_cx():
    # f'' = -2c·sin(cx) - c²x·cos(cx); at x = 10, c = 0.15π: sin = -1, cos = 0 -> 2c = 0.3π
    c = 0.15 * math.pi
    _, grad, hess = optim.value_gradient_hessian(optim.x_cos_cx(c), tf.constant([10.0], tf.float64))
    assert abs(grad.numpy()[0] - 1.5 * math.pi) < 1e-12  # f' = cos - cx·sin = 0 + 1.5π
    assert abs(hess.numpy()[0, 0] - 0.3 * math.pi) < 1e-12


def test_objectives_accept_grids():
    grid = np.zeros((3, 4, 2))  # (H, W, 2)
    grid[..., 0] = 1.0
    assert optim.f_2d(tf.constant(grid)).shape == (3, 4)
    np.testing.assert_allclose(optim.f_2d(tf.constant(grid)).numpy(), np.ones((3, 4)))

"""Below-sets and the second-order condition (convexity.md): f'' and Hessian eigenvalues by hand."""
import math

import numpy as np
import pytest
import tensorflow as tf

from kcv import optim

SQUARE = np.stack(np.meshgrid(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11), indexing="ij"), -1).reshape(-1, 2)


def test_second_derivatives_by_hand():
    xs = np.array([-1.0, 0.0, 0.5, 2.0])
    # (x³)'' = 6x; cos(πx)'' = -π²cos(πx); exp(0.5x)'' = exp(0.5x)/4
    np.testing.assert_allclose(optim.second_derivatives(lambda x: x**3, xs), 6 * xs, atol=1e-12)
    np.testing.assert_allclose(optim.second_derivatives(lambda x: tf.cos(math.pi * x), xs),
                               -math.pi**2 * np.cos(math.pi * xs), atol=1e-12)
    np.testing.assert_allclose(optim.second_derivatives(lambda x: tf.exp(0.5 * x), xs), np.exp(0.5 * xs) / 4)
    # finite differences agree (numpy f), and a linear f has f'' = 0 with autodiff
    np.testing.assert_allclose(optim.second_derivatives(lambda x: np.cos(np.pi * x), xs, method="finite_difference"),
                               -math.pi**2 * np.cos(math.pi * xs), atol=1e-5)
    assert optim.second_derivatives(lambda x: 3 * x + 1, xs).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="not differentiable by TensorFlow"):
        optim.second_derivatives(lambda x: np.cos(np.asarray(x)), xs)
    with pytest.raises(ValueError, match="method must be"):
        optim.second_derivatives(np.cos, xs, method="symbolic")


def test_is_convex_1d_on_the_books_functions():
    assert optim.is_convex_1d(lambda x: 0.5 * x**2, (-2, 2))
    assert optim.is_convex_1d(lambda x: tf.exp(0.5 * x), (-2, 2))
    assert not optim.is_convex_1d(lambda x: tf.cos(math.pi * x), (-2, 2))
    assert not optim.is_convex_1d(lambda x: x**3, (-2, 2))
    assert optim.is_convex_1d(lambda x: x**3, (0, 2))  # 6x >= 0 there; f''(0) = 0 is allowed
    # (x+1)(x-1)² = x³ - x² - x + 1: f'' = 6x - 2 < 0 left of 1/3 (the book's non-global local minimum)
    assert not optim.is_convex_1d(lambda x: (x + 1) * (x - 1) ** 2, (-2, 2))
    assert optim.is_convex_1d(lambda x: (x + 1) * (x - 1) ** 2, (0.34, 2))
    assert optim.is_convex_1d(lambda x: np.abs(x) ** 3, (-1, 1), method="finite_difference")


def test_hessians_by_hand():
    # x1² + 2x2²: H = diag(2, 4) everywhere; x1² - x2²: diag(2, -2)
    h = optim.hessians(optim.f_2d, SQUARE[:3])
    np.testing.assert_allclose(h, np.broadcast_to(np.diag([2.0, 4.0]), (3, 2, 2)))
    np.testing.assert_allclose(optim.min_hessian_eigenvalues(lambda p: p[..., 0] ** 2 - p[..., 1] ** 2, SQUARE),
                               np.full(len(SQUARE), -2.0))
    # x1·x2 has H = [[0, 1], [1, 0]] with eigenvalues ±1: indefinite although both diagonal entries are 0
    np.testing.assert_allclose(optim.hessians(lambda p: p[..., 0] * p[..., 1], SQUARE[:1])[0], [[0, 1], [1, 0]])
    assert optim.min_hessian_eigenvalues(lambda p: p[..., 0] * p[..., 1], SQUARE[:1])[0] == pytest.approx(-1.0)
    # x1² + 0.5cos(2πx2): H = diag(2, -2π²cos(2πx2)), most negative -2π² where cos = 1 (x2 = 0, ±1)
    wavy = lambda p: p[..., 0] ** 2 + 0.5 * tf.cos(2 * math.pi * p[..., 1])  # noqa: E731
    eig = optim.min_hessian_eigenvalues(wavy, np.array([[0.3, 0.0], [0.3, 0.5]]))
    np.testing.assert_allclose(eig, [-2 * math.pi**2, 2.0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"points must be \(m, d\)"):
        optim.hessians(optim.f_2d, np.zeros(2))


def test_hessian_psd_on_the_books_2d_functions():
    _, two_d = optim.second_order_examples()
    verdict = {label: optim.hessian_psd(f, SQUARE) for label, f in two_d}
    assert verdict == {"½‖x‖²": True, "x1² + 2x2²": True, "0.1x1² + 2x2²": True, "x1² + x2²/2": True,
                       "x1² - x2²": False, "x1² + 0.5cos(2πx2)": False}
    # ½‖x‖² has the identity as Hessian (convexity.md)
    np.testing.assert_allclose(optim.hessians(two_d[0][1], SQUARE[:2]), np.broadcast_to(np.eye(2), (2, 2, 2)))


def test_below_sets():
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21)), -1).reshape(-1, 2)
    convex = optim.below_set(lambda p: p[..., 0] ** 2 + 0.5 * p[..., 1] ** 2, 1.0)
    wavy = optim.below_set(lambda p: p[..., 0] ** 2 + 0.5 * np.cos(2 * np.pi * p[..., 1]), 0.0)
    assert optim.is_convex_set_on_samples(convex, grid)
    assert not optim.is_convex_set_on_samples(wavy, grid)
    # (0, ±0.5) are members (0.5·cos(π) = -0.5 <= 0), their midpoint (0, 0) is not (0.5 > 0)
    assert wavy(np.array([[0.0, 0.5], [0.0, -0.5], [0.0, 0.0]])).tolist() == [True, True, False]

"""Gradient descent, Newton and preconditioning against the book's printed numbers (gd.md)."""
import math

import numpy as np
import pytest

from kcv import optim


@pytest.mark.parametrize(
    "eta, expected",
    [
        (0.2, 0.060466),  # x_k = 10·(1-2η)^k = 10·0.6^10 = 0.0604662
        (0.05, 3.486784),  # 10·0.9^10 = 3.4867844
        (1.1, 61.917364),  # 10·(-1.2)^10 = 61.917364 (diverges)
    ],
)
def test_gd_1d_square_matches_book(eta, expected):
    traj = optim.gradient_descent(optim.square, 10.0, eta, steps=10)
    assert traj.xs.shape == (11, 1) and traj.fs.shape == (11,) and traj.lrs.shape == (10,)
    assert traj.final[0] == pytest.approx(expected, abs=1e-5)
    assert traj.final[0] == pytest.approx(10 * (1 - 2 * eta) ** 10, rel=1e-12)
    assert traj.book_line() == f"epoch 10, x: {expected:f}"
    np.testing.assert_allclose(traj.fs, traj.xs[:, 0] ** 2)


def test_gd_1d_nonconvex_matches_book():
    # f = x·cos(0.15πx), η = 2 from 10: the book prints -1.528166 (float32 tf tab: -1.528165).
    traj = optim.gradient_descent(optim.x_cos_cx(0.15 * math.pi), 10.0, 2.0, steps=10)
    assert traj.final[0] == pytest.approx(-1.528166, abs=1e-5)
    assert traj.book_line() == "epoch 10, x: -1.528166"


def test_gd_first_step_uses_autodiff_gradient():
    # f'(x) = cos(cx) - c·x·sin(cx); at x = 10, c = 0.15π: cos(1.5π) = 0, sin(1.5π) = -1,
    # so f'(10) = 0 - c·10·(-1) = 1.5π and x1 = 10 - 2·1.5π = 10 - 3π.
    traj = optim.gradient_descent(optim.x_cos_cx(), 10.0, 2.0, steps=1)
    assert traj.xs[1, 0] == pytest.approx(10 - 3 * math.pi, abs=1e-12)


def test_gd_2d_matches_book():
    # x1 = -5·(1-0.2)^20 = -0.0576461, x2 = -2·(1-0.4)^20 = -7.31e-5
    traj = optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=20)
    assert traj.xs.shape == (21, 2)
    assert traj.final[0] == pytest.approx(-0.057646, abs=1e-5)
    assert traj.final[1] == pytest.approx(-0.000073, abs=1e-5)
    assert traj.book_line() == "epoch 20, x1: -0.057646, x2: -0.000073"
    assert traj.fs[0] == pytest.approx(25 + 2 * 4)  # f(-5, -2) = 25 + 8


def test_newton_cosh_reaches_zero():
    # cosh(0.5x) from 10: x <- x - 2·tanh(x/2) converges cubically; the book prints tensor(0.).
    traj = optim.newton(optim.scaled_cosh(0.5), 10.0)
    assert abs(traj.final[0]) < 1e-5
    # First step by hand: 10 - 2·tanh(5) = 8.0001816
    assert traj.xs[1, 0] == pytest.approx(10 - 2 * math.tanh(5), abs=1e-12)


@pytest.mark.parametrize("eta, book, value", [(1.0, 26.8341, 26.834133), (0.5, 7.2699, 7.269860)])
def test_newton_nonconvex_matches_book(eta, book, value):
    # The book prints 4 decimals (torch); the float64 value is pinned to 1e-5 and rounds to the book.
    traj = optim.newton(optim.x_cos_cx(0.15 * math.pi), 10.0, eta=eta)
    assert traj.final[0] == pytest.approx(value, abs=1e-5)
    assert round(float(traj.final[0]), 4) == book


def test_preconditioned_gd_equalises_axes():
    # f = 0.1·x1² + 2·x2²: diag(H) = (0.2, 4), so each step multiplies both coordinates by 1-η.
    traj = optim.preconditioned_gd(optim.ill_conditioned_2d, [-5.0, -2.0], 0.4, steps=3)
    np.testing.assert_allclose(traj.xs[3], [-5 * 0.6**3, -2 * 0.6**3], rtol=1e-12)
    # Plain GD with the same η barely moves x1: factor 1 - 0.4·0.2 = 0.92 per step.
    plain = optim.gradient_descent(optim.ill_conditioned_2d, [-5.0, -2.0], 0.4, steps=3)
    assert plain.xs[3, 0] == pytest.approx(-5 * 0.92**3)
    assert abs(traj.final[0]) < abs(plain.final[0])


def test_preconditioned_gd_eta_one_solves_quadratic_in_one_step():
    traj = optim.preconditioned_gd(optim.f_2d, [-5.0, -2.0], 1.0, steps=1)
    np.testing.assert_allclose(traj.xs[1], [0.0, 0.0], atol=1e-12)


def test_zero_steps_and_bad_steps():
    traj = optim.gradient_descent(optim.square, 3.0, 0.1, steps=0)
    assert traj.xs.shape == (1, 1) and traj.fs.tolist() == [9.0]
    with pytest.raises(ValueError, match="steps must be >= 0"):
        optim.gradient_descent(optim.square, 3.0, 0.1, steps=-1)
    with pytest.raises(ValueError, match="empty"):
        optim.gradient_descent(optim.square, [], 0.1)

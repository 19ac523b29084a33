"""Backtracking (Armijo) line search against fixed learning rates (gd.md): by hand and the book's numbers."""
import math

import numpy as np
import pytest

from kcv import optim


def grad_square(x):
    return 2 * x


def grad_f2d(x):
    return np.array([2 * x[0], 4 * x[1]])


def assert_armijo_each_step(traj, f, grad, c=1e-4):
    for k in range(traj.steps):
        x, x_next, eta = traj.xs[k], traj.xs[k + 1], traj.lrs[k]
        g = grad(x)
        np.testing.assert_allclose(x_next, x - eta * g, rtol=1e-12, atol=1e-300)
        assert traj.grad_sq[k] == pytest.approx(float(np.sum(g * g)))
        assert optim.armijo_holds(f(x), f(x_next), eta, float(np.sum(g * g)), c)
        assert f(x_next) <= f(x) - c * eta * np.sum(g * g)
        # the step before (eta/beta) was refused, unless eta0 was accepted at once
        if traj.trials[k] > 1:
            x_refused = x - 2 * eta * g
            assert not optim.armijo_holds(f(x), f(x_refused), 2 * eta, float(np.sum(g * g)), c)


def test_line_search_converges_where_eta_1_1_diverges():
    # Fixed η = 1.1 on x² from 10: x_k = 10·(1 - 2.2)^k = 10·(-1.2)^k, the book's 61.917364.
    fixed = optim.gradient_descent(optim.square, 10.0, 1.1, steps=10)
    assert fixed.book_line() == "epoch 10, x: 61.917364"
    # Backtracking from η0 = 1.1: 10 - 1.1·20 = -12 gives 144 > 100, refused; η = 0.55 gives x = -1.
    # Every update then multiplies x by 1 - 2·0.55 = -0.1: x_k = 10·(-0.1)^k.
    ls = optim.backtracking_line_search(optim.square, 10.0, steps=10, eta0=1.1, beta=0.5, c=1e-4)
    assert ls.lrs.tolist() == [0.55] * 10 and ls.trials.tolist() == [2] * 10
    np.testing.assert_allclose(ls.xs[:, 0], 10 * (-0.1) ** np.arange(11), rtol=1e-9)
    assert abs(ls.final[0]) < 1e-8 < abs(fixed.final[0])
    assert_armijo_each_step(ls, lambda x: float(np.sum(x**2)), grad_square)


@pytest.mark.parametrize("eta, book", [(0.2, "epoch 10, x: 0.060466"), (0.05, "epoch 10, x: 3.486784"),
                                       (1.1, "epoch 10, x: 61.917364")])
def test_fixed_rates_print_the_books_numbers(eta, book):
    assert optim.gradient_descent(optim.square, 10.0, eta, steps=10).book_line() == book


def test_line_search_2d_by_hand_and_armijo_everywhere():
    f = lambda x: float(x[0] ** 2 + 2 * x[1] ** 2)  # noqa: E731
    ls = optim.backtracking_line_search(optim.f_2d, [-5.0, -2.0], steps=20, eta0=1.1)
    # step 1: g = (-10, -8). η = 1.1: (6, 6.8), f = 128.48 > 33, refused. η = 0.55: (0.5, 2.4), f = 11.77 accepted
    np.testing.assert_allclose(ls.xs[1], [0.5, 2.4])
    assert ls.lrs[0] == 0.55 and ls.trials[0] == 2
    assert_armijo_each_step(ls, f, grad_f2d)
    assert f(ls.final) < 1e-20
    # the book's fixed η = 0.1 run for comparison
    assert optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=20).book_line() == \
        "epoch 20, x1: -0.057646, x2: -0.000073"


def test_log_sum_exp_exercise():
    # f'(x) = 0 where exp(x) = 2·exp(-2x - 3): x* = (ln 2 - 3)/3
    x_star = (math.log(2) - 3) / 3
    ls = optim.backtracking_line_search(optim.log_sum_exp_exercise, 2.0, steps=12, eta0=1.1)
    assert ls.final[0] == pytest.approx(x_star, abs=1e-7)
    assert np.all(np.diff(ls.fs) <= 0)  # Armijo: never uphill
    x, _ = optim.minimize_on_interval(lambda v: np.logaddexp(v, -2 * v - 3), -2.0, 2.0)
    assert x == pytest.approx(x_star, abs=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="eta0 must be a finite number > 0"):
        optim.backtracking_line_search(optim.square, 1.0, eta0=0.0)
    with pytest.raises(ValueError, match=r"beta and c must be in \(0, 1\)"):
        optim.backtracking_line_search(optim.square, 1.0, beta=1.0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        optim.backtracking_line_search(optim.square, 1.0, steps=-1)

"""Noisy SGD (sgd.md): the book's step-size factors exactly, the trend, and seeded repeats."""
import math

import numpy as np
import pytest

from kcv import optim

START = [-5.0, -2.0]


def test_factor_functions_match_book():
    assert optim.constant_lr(7) == 1.0
    assert optim.exponential_lr(2) == math.exp(-0.2)
    assert optim.polynomial_lr(2) == 1.2 ** -0.5


@pytest.mark.parametrize(
    "name, first_factors",
    [
        ("constant", [1.0, 1.0, 1.0]),
        # t starts at 1 and is incremented before use: t = 2, 3, 4
        ("exponential", [math.exp(-0.2), math.exp(-0.3), math.exp(-0.4)]),
        ("polynomial", [(1 + 0.2) ** -0.5, (1 + 0.3) ** -0.5, (1 + 0.4) ** -0.5]),
    ],
)
def test_schedule_factors_start_at_t_equals_two(name, first_factors):
    traj = optim.noisy_sgd(optim.f_2d, START, eta=0.1, steps=3, lr=name, seed=0)
    assert traj.lrs.tolist() == [0.1 * f for f in first_factors]


@pytest.mark.parametrize("name, steps", [("constant", 50), ("exponential", 1000), ("polynomial", 50)])
def test_book_runs_move_towards_optimum(name, steps):
    # Start distance sqrt(25 + 4) = 5.385; the book's finals are all within 1 of the optimum.
    traj = optim.noisy_sgd(optim.f_2d, START, eta=0.1, steps=steps, lr=name, seed=0)
    assert traj.xs.shape == (steps + 1, 2)
    start, end = np.linalg.norm(traj.xs[0]), np.linalg.norm(traj.final)
    assert start == pytest.approx(math.sqrt(29))
    assert end < 1.5 < start
    assert traj.book_line().startswith(f"epoch {steps}, x1: ")
    if name == "exponential":
        # exp(-0.1t) < 2e-22 after t = 500: the last 500 of 1000 updates leave x where it was.
        assert np.max(np.abs(traj.xs[500] - traj.final)) < 1e-9


def test_same_seed_repeats_and_other_seed_differs():
    a = optim.noisy_sgd(optim.f_2d, START, steps=20, lr="polynomial", seed=5)
    b = optim.noisy_sgd(optim.f_2d, START, steps=20, lr="polynomial", seed=5)
    c = optim.noisy_sgd(optim.f_2d, START, steps=20, lr="polynomial", seed=6)
    np.testing.assert_array_equal(a.xs, b.xs)
    assert not np.allclose(a.xs, c.xs)


def test_zero_noise_is_plain_gradient_descent():
    noisy = optim.noisy_sgd(optim.f_2d, START, eta=0.1, steps=20, noise_std=0.0, seed=1)
    plain = optim.gradient_descent(optim.f_2d, START, 0.1, steps=20)
    np.testing.assert_allclose(noisy.xs, plain.xs, rtol=1e-12)


def test_unknown_factor_name():
    with pytest.raises(ValueError, match="unknown lr factor 'cosine'; valid: constant, exponential, polynomial"):
        optim.noisy_sgd(optim.f_2d, START, lr="cosine")

"""Constraints (convexity.md): the Lagrangian's saddle point, penalties, projections, clipping, projected GD."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv import optim

F, C = optim.sum_of_squares, optim.halfplane_constraint
L = optim.lagrangian(F, [C])


def test_lagrangian_saddle_point_by_hand():
    # L(x, α) = x1² + x2² + α(1 - x1 - x2): ∇x L = 0 -> x = (α/2, α/2); x1 + x2 = 1 -> α* = 1, x* = (0.5, 0.5)
    x_star, a_star = tf.constant([0.5, 0.5], tf.float64), tf.constant([1.0], tf.float64)
    assert float(L(x_star, a_star)) == pytest.approx(0.5)
    # saddle: L(x*, α) <= L(x*, α*) <= L(x, α*) for all α >= 0 and all x
    for a in [0.0, 0.5, 3.0]:
        assert float(L(x_star, tf.constant([a], tf.float64))) <= 0.5 + 1e-12
    for x in [[0.0, 0.0], [1.0, 0.0], [0.4, 0.7], [-1.0, 2.0]]:
        assert float(L(tf.constant(x, tf.float64), a_star)) >= 0.5 - 1e-12


def test_gradient_descent_ascent_converges_to_the_saddle_point():
    traj = optim.gradient_descent_ascent(L, [0.0, 0.0], [0.0], eta=0.1, steps=200)
    assert traj.xs.shape == (201, 2) and traj.alphas.shape == (201, 1) and traj.ls.shape == (201,)
    # first step by hand from x = 0, α = 0: ∇x L = 0, ∇α L = c(0) = 1 -> x stays, α = 0.1
    np.testing.assert_allclose(traj.xs[1], [0.0, 0.0])
    np.testing.assert_allclose(traj.alphas[1], [0.1])
    # second: ∇x L = 2x - α = -0.1 -> x = 0.01 each; α = 0.1 + 0.1·1 = 0.2
    np.testing.assert_allclose(traj.xs[2], [0.01, 0.01])
    np.testing.assert_allclose(traj.alphas[2], [0.2])
    # the contraction |1 - η + iη| = sqrt(0.82) per step: 0.9055^200 ≈ 2e-9
    np.testing.assert_allclose(traj.xs[-1], [0.5, 0.5], atol=1e-7)
    assert traj.alphas[-1, 0] == pytest.approx(1.0, abs=1e-7) and traj.ls[-1] == pytest.approx(0.5, abs=1e-7)


def test_inactive_constraint_gets_a_zero_multiplier():
    # x1 + x2 >= -1 (c = -1 - x1 - x2 <= 0) holds at the unconstrained minimum 0: α -> 0, x -> 0
    inactive = optim.lagrangian(F, [lambda x: -1.0 - x[..., 0] - x[..., 1]])
    traj = optim.gradient_descent_ascent(inactive, [1.0, 1.0], [0.5], eta=0.1, steps=300)
    np.testing.assert_allclose(traj.xs[-1], [0.0, 0.0], atol=1e-6)
    assert traj.alphas[-1, 0] == 0.0 and np.all(traj.alphas >= 0)


@pytest.mark.parametrize("w", [0.1, 1.0, 10.0, 1000.0])
def test_penalty_solution_matches_the_closed_form(w):
    # minimise x1² + x2² + w(1 - x1 - x2)²: 2x_i = 2w(1 - 2x_i) -> x_i = w/(1 + 2w)
    x = optim.penalty_solution(F, [C], w, [0.0, 0.0])
    np.testing.assert_allclose(x, [w / (1 + 2 * w)] * 2, rtol=1e-12)
    # the penalty's gradient 2w·c(x) = 2w/(1 + 2w) estimates α* = 1
    assert 2 * w * (1 - x.sum()) == pytest.approx(2 * w / (1 + 2 * w))


def test_projections_by_hand():
    np.testing.assert_allclose(optim.project_ball([3.0, 4.0], 1.0), [0.6, 0.8])  # ‖(3, 4)‖ = 5
    np.testing.assert_allclose(optim.project_ball([0.3, 0.4], 1.0), [0.3, 0.4])  # inside: unchanged
    np.testing.assert_allclose(optim.project_ball([4.0, 1.0], 2.0, center=[1.0, 1.0]), [3.0, 1.0])
    np.testing.assert_allclose(optim.project_box([2.0, -3.0, 0.2], [-1, -1, -1], [1, 0.5, 1]), [1.0, -1.0, 0.2])
    # ℓ1: (2, 0.5) -> θ = 1 -> (1, 0) (sparse); (0.8, 0.6) -> θ = 0.2 -> (0.6, 0.4); (-3, 1) -> θ = 1.5 -> (-1, 0)
    np.testing.assert_allclose(optim.project_l1_ball([2.0, 0.5]), [1.0, 0.0])
    np.testing.assert_allclose(optim.project_l1_ball([0.8, 0.6]), [0.6, 0.4])
    np.testing.assert_allclose(optim.project_l1_ball([-3.0, 1.0]), [-1.0, 0.0])
    np.testing.assert_allclose(optim.project_l1_ball([0.2, -0.3]), [0.2, -0.3])
    with pytest.raises(ValueError, match="empty box"):
        optim.project_box([0.0], [1.0], [0.0])


def test_projection_is_the_nearest_point():
    rng = np.random.default_rng(0)
    for p in rng.normal(scale=2.0, size=(20, 2)):
        for project, inside in [(lambda v: optim.project_ball(v, 1.0), lambda q: np.linalg.norm(q) <= 1 + 1e-12),
                                (lambda v: optim.project_l1_ball(v, 1.0), lambda q: np.abs(q).sum() <= 1 + 1e-12)]:
            q = project(p)
            assert inside(q)
            others = rng.normal(size=(200, 2))
            others = np.stack([project(o) for o in others])  # feasible candidates
            assert np.linalg.norm(p - q) <= np.min(np.linalg.norm(p - others, axis=1)) + 1e-12


def test_gradient_clipping_is_the_projection_onto_a_ball():
    g = np.array([-14.0, -12.0])  # ∇[(x1 - 2)² + 2(x2 - 1)²] at (-5, -2); ‖g‖ = sqrt(340)
    clipped = optim.clip_gradient(g, 5.0)
    np.testing.assert_allclose(clipped, g * 5 / math.sqrt(340))
    np.testing.assert_allclose(clipped, optim.project_ball(g, 5.0))
    np.testing.assert_allclose(clipped, tf.clip_by_norm(tf.constant(g), 5.0).numpy())
    np.testing.assert_allclose(optim.clip_gradient(g, 100.0), g)  # inside the ball: untouched
    # Keras' clipnorm is the same projection (per variable): one SGD step with lr 1 moves by -Proj(g)
    w = keras.Variable(np.zeros(2, np.float32))
    keras.optimizers.SGD(learning_rate=1.0, clipnorm=5.0).apply([keras.ops.convert_to_tensor(g.astype(np.float32))],
                                                                [w])
    np.testing.assert_allclose(w.numpy(), -clipped, rtol=1e-6)


def kkt_ball_optimum():
    # minimise (x1 - 2)² + 2(x2 - 1)² on ‖x‖ <= 1: ∇f + 2μx = 0 -> x1 = 2/(1+μ), x2 = 2/(2+μ), and ‖x‖ = 1
    norm_sq = lambda mu: (2 / (1 + mu)) ** 2 + (2 / (2 + mu)) ** 2 - 1  # noqa: E731  decreasing in μ
    lo, hi = 0.0, 10.0
    while hi - lo > 1e-14:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if norm_sq(mid) > 0 else (lo, mid)
    mu = 0.5 * (lo + hi)
    return np.array([2 / (1 + mu), 2 / (2 + mu)]), mu


def test_projected_gradient_descent_reaches_the_constrained_optimum():
    f = optim.shifted_quadratic((2.0, 1.0))
    x_star, mu = kkt_ball_optimum()
    assert mu == pytest.approx(1.453326, abs=1e-6)
    ball = optim.projected_gradient_descent(f, [-5.0, -2.0], 0.1, 50, lambda v: optim.project_ball(v, 1.0))
    np.testing.assert_allclose(ball.final, x_star, atol=1e-6)
    assert np.all(np.linalg.norm(ball.xs[1:], axis=1) <= 1 + 1e-12)  # every iterate is feasible
    # first step by hand: (-5, -2) - 0.1·(-14, -12) = (-3.6, -0.8), projected: /‖·‖ = sqrt(13.6)
    np.testing.assert_allclose(ball.xs[1], np.array([-3.6, -0.8]) / math.sqrt(13.6))
    # a box and a separable f: the optimum is the clip of the unconstrained minimum (2, 1)
    box = optim.projected_gradient_descent(f, [-5.0, -2.0], 0.1, 50,
                                           lambda v: optim.project_box(v, [-1, -1], [1, 0.5]))
    np.testing.assert_allclose(box.final, [1.0, 0.5], atol=1e-9)
    assert box.book_line() == "epoch 50, x1: 1.000000, x2: 0.500000"

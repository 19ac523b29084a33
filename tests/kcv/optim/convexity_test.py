"""Chord and Jensen checks behind the convexity illustrations."""
import numpy as np
import pytest

from kcv import optim


def test_chord_gap_convex_and_nonconvex():
    lam = np.linspace(0, 1, 5)
    # f = 0.5x² on [-1.5, 0.5], λ = 0.5: 0.5·1.125 + 0.5·0.125 - 0.5·(-0.5)² = 0.625 - 0.125 = 0.5
    gap = optim.chord_gap(lambda x: 0.5 * x**2, -1.5, 0.5, lam)
    assert gap[2] == pytest.approx(0.5)
    assert gap[0] == 0 and gap[-1] == 0 and np.all(gap >= 0)
    # cos(πx) on [-1.5, 0.5]: both ends are 0, the midpoint cos(-0.5π)... use λ = 0.25 -> x = 0:
    # 0 - cos(0) = -1 < 0, so the chord goes below the graph: not convex.
    gap = optim.chord_gap(lambda x: np.cos(np.pi * x), -1.5, 0.5, np.array([0.25]))
    assert gap[0] == pytest.approx(-1.0)


def test_jensen_gap():
    # X ∈ {0, 2} equally likely, f = x²: E[f] = 2, f(E[X]) = 1 -> gap 1
    assert optim.jensen_gap(np.square, np.array([0.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # concave f = -x² flips the sign
    assert optim.jensen_gap(lambda x: -x**2, np.array([0.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="non-negative weights"):
        optim.jensen_gap(np.square, np.array([0.0, 2.0]), np.array([1.0, -1.0]))


def test_convex_set_sampled_check():
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)), -1).reshape(-1, 2)
    disk = lambda p: np.sum(p**2, axis=-1) <= 1.0  # noqa: E731
    # An annulus is not convex: (-0.75, 0) and (0.75, 0) are members, (0, 0) is not.
    ring = lambda p: (np.sum(p**2, axis=-1) <= 1.0) & (np.sum(p**2, axis=-1) >= 0.25)  # noqa: E731
    assert optim.is_convex_set_on_samples(disk, grid)
    assert not optim.is_convex_set_on_samples(ring, grid)

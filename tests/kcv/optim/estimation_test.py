"""Risk vs empirical risk (optimization-intro.md): the minima against roots of the derivatives by bisection."""
import math

import numpy as np
import pytest

from kcv import optim
from kcv.optim.scalar import golden_section, minimize_on_interval


def bisect(fn, a, b, tol=1e-13):
    fa = fn(a)
    assert fa * fn(b) < 0, "no sign change"
    while b - a > tol:
        m = 0.5 * (a + b)
        if fa * fn(m) <= 0:
            b = m
        else:
            a, fa = m, fn(m)
    return 0.5 * (a + b)


def d_risk(x):  # f'(x) = cos(πx) - πx·sin(πx)
    return math.cos(math.pi * x) - math.pi * x * math.sin(math.pi * x)


def d_empirical(x):  # g'(x) = f'(x) - π·sin(5πx)
    return d_risk(x) - math.pi * math.sin(5 * math.pi * x)


def critical_points(deriv, a, b, cells=1000):
    grid = np.linspace(a, b, cells + 1)
    return [bisect(deriv, lo, hi) for lo, hi in zip(grid[:-1], grid[1:]) if deriv(lo) * deriv(hi) < 0]


def test_risk_minimum_is_the_root_of_the_derivative():
    # f'(1) = -1 < 0 and f'(1.2) = -0.809 + 1.2π·0.588 > 0: the minimum lies in (1, 1.2)
    x_star = bisect(d_risk, 1.0, 1.2)
    m = optim.risk_minima()
    assert m.x_risk == pytest.approx(x_star, abs=1e-7)
    assert m.risk_min == pytest.approx(x_star * math.cos(math.pi * x_star), abs=1e-12)
    assert round(m.x_risk, 6) == 1.090408 and round(m.risk_min, 6) == -1.046721


def test_empirical_minimum_is_the_lowest_critical_point():
    crit = critical_points(d_empirical, 0.5, 1.5)
    g = lambda x: float(optim.empirical_risk(np.float64(x)))  # noqa: E731
    # the ends are not minima: g(0.5) = g(1.5) ≈ 0 is far above
    best = min(crit, key=g)
    m = optim.risk_minima()
    assert m.x_empirical == pytest.approx(best, abs=1e-7)
    assert m.empirical_min == pytest.approx(g(best), abs=1e-12)
    assert round(m.x_empirical, 6) == 1.016983 and round(m.empirical_min, 6) == -1.208461
    # the two minima differ, and minimising g costs f(x̂) - f(x*) > 0 in risk
    assert m.x_empirical < m.x_risk
    assert m.excess_risk == pytest.approx(float(optim.risk(np.float64(best))) - m.risk_min, abs=1e-9)
    assert round(m.excess_risk, 6) == 0.031185


def test_golden_section_and_interval_minimum():
    assert golden_section(lambda x: (x - 0.3) ** 2, -1.0, 2.0) == pytest.approx(0.3, abs=1e-7)
    # the minimum at an end stays there: x on [1, 2] is smallest at 1
    assert minimize_on_interval(lambda x: x, 1.0, 2.0) == pytest.approx((1.0, 1.0), abs=1e-9)
    # cos on [0, 4]: the global minimum π (not the grid's nearest point)
    x, fx = minimize_on_interval(np.cos, 0.0, 4.0, n=101)
    assert x == pytest.approx(math.pi, abs=1e-7) and fx == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError, match="need a <= b"):
        golden_section(np.cos, 1.0, 0.0)

"""One-dimensional minimisation on an interval: a dense grid, then golden-section refinement.

Used for the risk / empirical-risk minima (optimization-intro.md) and the line-search exercise
(gd.md: minimise log(exp(x) + exp(-2x - 3)) on [a, b]). Plain numpy, float64.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

# An elementwise scalar function: numpy array (n,) -> (n,) (a float works too).
ScalarFn = Callable[[np.ndarray], np.ndarray]

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...


def golden_section(f: ScalarFn, a: float, b: float, tol: float = 1e-12, max_iter: int = 200) -> float:
    """The minimiser of f on [a, b], assuming f is unimodal there; stops when b - a <= tol.

    Each iteration shrinks the bracket by 0.618 and costs one evaluation of f. Near a minimum f
    is flat to second order, so x is only as exact as ~sqrt(float eps)·|x| where f's values
    stop telling points apart.
    """
    a, b = float(a), float(b)
    if not a <= b:
        raise ValueError(f"need a <= b, got [{a}, {b}]")
    c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
    fc, fd = float(f(np.float64(c))), float(f(np.float64(d)))
    for _ in range(max_iter):
        if b - a <= tol:
            break
        if fc <= fd:  # the minimum is in [a, d]
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = float(f(np.float64(c)))
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = float(f(np.float64(d)))
    return (a + b) / 2.0


def minimize_on_interval(f: ScalarFn, a: float, b: float, n: int = 10_001, tol: float = 1e-12
                         ) -> tuple[float, float]:
    """The global minimum of f on [a, b]: (x, f(x)).

    f is evaluated on n equally spaced points; the best grid point's two neighbours bracket the
    minimum (exactly when f has one local minimum per grid cell, which a dense grid makes true for
    smooth f), and golden_section refines inside that bracket. A minimum at an end of the
    interval stays there.
    """
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    grid = np.linspace(float(a), float(b), n)  # (n,)
    values = np.asarray(f(grid), dtype=np.float64)  # (n,)
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, n - 1)]
    x = golden_section(f, lo, hi, tol=tol)
    fx = float(f(np.float64(x)))
    if fx > values[i]:  # refinement cannot be worse than the grid
        x, fx = float(grid[i]), float(values[i])
    return x, fx

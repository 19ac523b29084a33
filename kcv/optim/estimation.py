"""Optimisation vs estimation (optimization-intro.md): the risk and an empirical risk with other minima.

The book's figure: risk f(x) = x·cos(πx) (the expected loss) and empirical risk
g(x) = f(x) + 0.2·cos(5πx) (the loss on a finite training set: the risk plus a wiggle) on
[0.5, 1.5]. Minimising g is what optimisation does; the minimum of f is what we want. Plain numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kcv.optim.scalar import minimize_on_interval

INTERVAL = (0.5, 1.5)  # the book's plotting range


def risk(x: np.ndarray) -> np.ndarray:
    """f(x) = x·cos(πx), elementwise."""
    return x * np.cos(np.pi * x)


def empirical_risk(x: np.ndarray) -> np.ndarray:
    """g(x) = f(x) + 0.2·cos(5πx), elementwise."""
    return risk(x) + 0.2 * np.cos(5 * np.pi * x)


@dataclass(frozen=True)
class RiskMinima:
    """The two minima on the interval and what optimising the empirical risk costs in risk."""

    x_risk: float  # argmin f
    risk_min: float  # f(x_risk)
    x_empirical: float  # argmin g
    empirical_min: float  # g(x_empirical)

    @property
    def excess_risk(self) -> float:
        """f(argmin g) - min f >= 0: the risk lost by minimising the empirical risk instead."""
        return float(risk(np.float64(self.x_empirical))) - self.risk_min


def risk_minima(interval: tuple[float, float] = INTERVAL, n: int = 10_001) -> RiskMinima:
    """argmin and min of f and of g on `interval`, by a dense grid and golden-section refinement."""
    xr, fr = minimize_on_interval(risk, *interval, n=n)
    xe, ge = minimize_on_interval(empirical_risk, *interval, n=n)
    return RiskMinima(xr, fr, xe, ge)

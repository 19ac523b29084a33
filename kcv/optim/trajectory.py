"""The record of an optimisation run: every iterate, its objective value and the step size used."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import tensorflow as tf

Point = Union[float, Sequence[float], np.ndarray, tf.Tensor]


def as_point(x0: Point) -> tf.Tensor:
    """A start point as a float64 (d,) tensor; a plain number becomes a 1-D point (1,).

    float64 because the book's printed digits (e.g. Newton's 26.8341) come out of long
    chains of updates where float32 rounding shows in the last printed place.
    """
    x = tf.reshape(tf.convert_to_tensor(x0, dtype=tf.float64), [-1])
    if x.shape[0] == 0:
        raise ValueError("start point x0 is empty; give a number or a sequence of numbers")
    return x


@dataclass(frozen=True)
class Trajectory:
    """Iterates of one run. Row 0 is the start point; row i is the point after i updates."""

    xs: np.ndarray  # (steps + 1, d) float64 iterates
    fs: np.ndarray  # (steps + 1,) objective at each iterate
    lrs: np.ndarray  # (steps,) step size used for update i (η times any schedule factor)

    @property
    def steps(self) -> int:
        return int(self.xs.shape[0]) - 1

    @property
    def dim(self) -> int:
        return int(self.xs.shape[1])

    @property
    def final(self) -> np.ndarray:
        """The last iterate, (d,)."""
        return self.xs[-1]

    def book_line(self, digits: int = 6) -> str:
        """The book's progress line: `epoch 10, x: 0.060466` (1-D) or `epoch 20, x1: ..., x2: ...`.

        digits=6 is Python's `:f` (gd.md, sgd.md); the Newton runs print torch's 4 decimals.
        """
        if self.dim == 1:
            return f"epoch {self.steps}, x: {self.final[0]:.{digits}f}"
        coords = ", ".join(f"x{i + 1}: {v:.{digits}f}" for i, v in enumerate(self.final))
        return f"epoch {self.steps}, {coords}"

"""The book's toy GAN data: 2-D Gaussian points X·A + b with X ~ N(0, I) (D2L section "GAN").

A = [[1, 2], [-0.1, 0.5]], b = [1, 2], so the data's mean is b and its covariance is
AᵀA = [[1.01, 1.95], [1.95, 4.25]] (the book prints it).
"""
from __future__ import annotations

import numpy as np

A = np.array([[1.0, 2.0], [-0.1, 0.5]], np.float32)
b = np.array([1.0, 2.0], np.float32)


def true_mean() -> np.ndarray:
    """(2,) the distribution's mean, b."""
    return b.astype(np.float64)


def true_covariance() -> np.ndarray:
    """(2, 2) the distribution's covariance AᵀA = [[1.01, 1.95], [1.95, 4.25]]."""
    a = A.astype(np.float64)
    return a.T @ a


def make_data(n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, 2) float32 points X·A + b, X ~ N(0, I) drawn from numpy's default_rng(seed)."""
    if n < 1:
        raise ValueError(f"make_data: n must be >= 1, got {n}")
    x = np.random.default_rng(seed).standard_normal((n, 2)).astype(np.float32)
    return x @ A + b


def make_dataset(n: int = 1000, batch_size: int = 8, seed: int = 0):
    """tf.data of shuffled (batch, 2) float32 batches of make_data(n, seed), like `d2l.load_array`.

    Reshuffled every epoch (seeded); the last partial batch is kept, as the book's DataLoader does.
    """
    import tensorflow as tf

    data = make_data(n, seed)
    return (
        tf.data.Dataset.from_tensor_slices(data)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )

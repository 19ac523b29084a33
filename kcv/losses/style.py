"""Neural style transfer losses (d2l 14.12): content MSE, Gram matrix, style MSE, total variation.

Features are channels-last, (batch, h, w, c) with batch 1 as in the book; images likewise.
"""
from __future__ import annotations

from keras import ops


def content_loss(y_hat, y):
    """Mean squared error between synthesised and content features; `y` is a constant target.

    (1, h, w, c), (1, h, w, c) -> scalar. No gradient flows into `y` (the book's `Y.detach()`).
    """
    return ops.mean(ops.square(y_hat - ops.stop_gradient(y)))


def gram(x):
    """Gram matrix X Xᵀ / (c·h·w) of channels-last features, (1, h, w, c) -> (c, c).

    As the book: X is the features reshaped to (c, n) with n = h·w (all positions; for batch 1
    that is h·w), and the product is divided by c·n, the number of elements.
    """
    channels = ops.shape(x)[-1]
    flat = ops.reshape(x, (-1, channels))  # (n, c): one row per position
    n = ops.cast(ops.shape(flat)[0], flat.dtype)
    return ops.matmul(ops.transpose(flat), flat) / (ops.cast(channels, flat.dtype) * n)


def style_loss(y_hat, gram_y):
    """Mean squared error between the Gram matrix of `y_hat` (1, h, w, c) and `gram_y` (c, c)."""
    return ops.mean(ops.square(gram(y_hat) - ops.stop_gradient(gram_y)))


def tv_loss(y_hat):
    """Total variation 0.5·(mean|Δh| + mean|Δw|) of a channels-last image (1, H, W, C) -> scalar."""
    dh = ops.abs(y_hat[:, 1:, :, :] - y_hat[:, :-1, :, :])
    dw = ops.abs(y_hat[:, :, 1:, :] - y_hat[:, :, :-1, :])
    return 0.5 * (ops.mean(dh) + ops.mean(dw))

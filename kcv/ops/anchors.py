"""Anchor boxes centred on every pixel, the book's `multibox_prior` (BOOK.md 1, rule 1)."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def anchor_shapes(sizes: Sequence[float], ratios: Sequence[float], height, width) -> tuple[tf.Tensor, tf.Tensor]:
    """Normalised (w, h) of the n+m-1 anchors of one pixel: two (n+m-1,) float32 tensors.

    Order (s1,r1), ..., (sn,r1), (s1,r2), ..., (s1,rm). Width `s*sqrt(r)*H/W`, height `s/sqrt(r)`,
    so r = 1 is square in pixels (the book's code; its prose says w*s*sqrt(r), which is wrong).
    """
    sizes_t = tf.constant(list(sizes), tf.float32)
    ratios_t = tf.constant(list(ratios), tf.float32)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    s0 = tf.constant(float(sizes[0]), tf.float32)
    # Same float32 operation order as the book: (x * H) / W. DivNoNan is that same division but
    # escapes Grappler's x / const -> x * (1 / const) rewrite when only W is static in a graph.
    w = tf.math.divide_no_nan(tf.concat([sizes_t * tf.sqrt(ratios_t[0]), s0 * tf.sqrt(ratios_t[1:])], 0) * height, width)
    h = tf.concat([sizes_t / tf.sqrt(ratios_t[0]), s0 / tf.sqrt(ratios_t[1:])], 0)
    return w, h


def anchors_for_size(height, width, sizes: Sequence[float], ratios: Sequence[float]) -> tf.Tensor:
    """All anchors of an H x W map: (H*W*(n+m-1), 4) normalised xyxy, pixel-major, unclipped.

    Flat index = (y*W + x)*(n+m-1) + k; centres ((x+0.5)/W, (y+0.5)/H). `height`/`width` may be
    Python ints or scalar tensors (dynamic shapes inside tf.function).
    """
    if len(sizes) == 0 or len(ratios) == 0:
        raise ValueError(f"sizes and ratios must be non-empty, got sizes={list(sizes)} ratios={list(ratios)}")
    w, h = anchor_shapes(sizes, ratios, height, width)
    half = tf.stack([-w, -h, w, h], axis=1) / 2  # (k, 4)
    h_i = tf.cast(height, tf.int32)
    w_i = tf.cast(width, tf.int32)
    # The book multiplies by float32(1/H) rather than dividing by H; keep that for bit-equality.
    step_h = 1.0 / tf.cast(height, tf.float64)
    step_w = 1.0 / tf.cast(width, tf.float64)
    center_h = (tf.range(h_i, dtype=tf.float32) + 0.5) * tf.cast(step_h, tf.float32)  # (H,)
    center_w = (tf.range(w_i, dtype=tf.float32) + 0.5) * tf.cast(step_w, tf.float32)  # (W,)
    # Separable construction: x columns depend only on (x, k), y columns only on (y, k), so one
    # broadcast add writes the whole (H, W, k, 4) output in a single pass.
    zeros_w = tf.zeros_like(center_w)
    zeros_h = tf.zeros_like(center_h)
    grid_x = tf.stack([center_w, zeros_w, center_w, zeros_w], axis=1)  # (W, 4)
    grid_y = tf.stack([zeros_h, center_h, zeros_h, center_h], axis=1)  # (H, 4)
    # x part + y part: each coordinate is (centre + 0) + half, which equals centre + half exactly.
    x_part = grid_x[:, None, :] + half * tf.constant([1.0, 0.0, 1.0, 0.0])  # (W, k, 4)
    y_part = grid_y[:, None, :] + half * tf.constant([0.0, 1.0, 0.0, 1.0])  # (H, k, 4)
    out = y_part[:, None, :, :] + x_part[None, :, :, :]  # (H, W, k, 4)
    return tf.reshape(out, (-1, 4))


def multibox_prior(data, sizes: Sequence[float], ratios: Sequence[float]) -> tf.Tensor:
    """Book API: `data` (batch, H, W, C) NHWC -> (1, H*W*(n+m-1), 4) normalised xyxy.

    Only the spatial shape of `data` is used (the book reads `shape[-2:]` of NCHW data; NHWC
    means `shape[1:3]`). Nothing is clipped to [0, 1].
    """
    if not hasattr(data, "shape"):
        data = tf.convert_to_tensor(data)
    static = tuple(data.shape)
    if len(static) != 4:
        raise ValueError(f"multibox_prior expects NHWC data of rank 4, got shape {static}")
    dynamic = None if None not in static[1:3] else tf.shape(data)
    height = static[1] if static[1] is not None else dynamic[1]
    width = static[2] if static[2] is not None else dynamic[2]
    return tf.expand_dims(anchors_for_size(height, width, sizes, ratios), 0)  # no copy, unlike [None]

"""First-occurrence argmax, the tie rule of the book's torch.max / torch.argmax."""
from __future__ import annotations

import tensorflow as tf


def first_argmax(values: tf.Tensor, axis: int = -1, dtype: tf.DType = tf.int64) -> tuple[tf.Tensor, tf.Tensor]:
    """Max and the index of its FIRST occurrence along `axis`: (..., n, ...) -> two (..., ...).

    tf.argmax documents no tie rule; the book's torch.max/argmax return the first index, and the
    assignment and class ids depend on it. Index dtype int64 (flat indices may pass 2**31) or int32.
    """
    values = tf.convert_to_tensor(values)
    best = tf.reduce_max(values, axis=axis, keepdims=True)
    n = tf.shape(values, out_type=dtype)[axis]
    shape = [1] * values.shape.rank
    shape[axis] = -1
    iota = tf.reshape(tf.range(n, dtype=dtype), shape)
    index = tf.reduce_min(tf.where(values == best, iota, n), axis=axis)
    return tf.squeeze(best, axis), tf.minimum(index, tf.maximum(n - 1, 0))

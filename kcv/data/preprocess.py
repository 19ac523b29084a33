"""Deterministic per-image preprocessing shared by evaluation input and the exported serving graph."""
from __future__ import annotations

import tensorflow as tf

RESIZE_MODES = ("stretch", "center_crop")


def resize_for_model(image: tf.Tensor, size: tuple[int, int], mode: str = "stretch") -> tf.Tensor:
    """(H, W, C) uint8 -> (size[0], size[1], C) uint8.

    stretch:      bilinear resize to `size` (CIFAR-10: 32x32 images stay untouched).
    center_crop:  resize the shorter side to size*256/224 and take the centre `size` crop
                  (the book's dog-breed test transform: Resize(256), CenterCrop(224)).
    """
    size = (int(size[0]), int(size[1]))
    if mode == "stretch":
        shape = tf.shape(image)[:2]
        same = tf.reduce_all(tf.equal(shape, size))
        out = tf.cond(
            same,
            lambda: image,
            lambda: tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, size, antialias=True)), 0, 255), tf.uint8),
        )
    elif mode == "center_crop":
        target = tf.cast(tf.round(max(size) * 256.0 / 224.0), tf.float32)
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = target / tf.reduce_min(hw)
        new_hw = tf.cast(tf.round(hw * scale), tf.int32)
        new_hw = tf.maximum(new_hw, size)
        resized = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, new_hw, antialias=True)), 0, 255), tf.uint8)
        top = (new_hw[0] - size[0]) // 2
        left = (new_hw[1] - size[1]) // 2
        out = resized[top:top + size[0], left:left + size[1], :]
    else:
        raise ValueError(f"unknown resize mode {mode!r}; use one of {RESIZE_MODES}")
    return tf.ensure_shape(out, (size[0], size[1], None))

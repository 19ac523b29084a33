"""Box format conversions between corner (x1, y1, x2, y2) and centre (cx, cy, w, h) layouts.

Both work on any leading shape `(..., 4)` and follow the book's arithmetic order exactly
(`cx = (x1 + x2) / 2`, `x1 = cx - 0.5 * w`), so float32 results are bit-identical to it.
"""
from __future__ import annotations

import tensorflow as tf


def as_float32(x) -> tf.Tensor:
    """Any array-like -> float32 tensor (the book computes in float32; float64 input is cast)."""
    x = tf.convert_to_tensor(x, dtype_hint=tf.float32)
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)



def box_corner_to_center(boxes) -> tf.Tensor:
    """(..., 4) xyxy -> (..., 4) (cx, cy, w, h)."""
    boxes = as_float32(boxes)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def box_center_to_corner(boxes) -> tf.Tensor:
    """(..., 4) (cx, cy, w, h) -> (..., 4) xyxy."""
    boxes = as_float32(boxes)
    cx, cy, w, h = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def box_area(boxes) -> tf.Tensor:
    """(..., 4) xyxy -> (...,) area `(x2 - x1) * (y2 - y1)`, unclipped like the book."""
    boxes = as_float32(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def rows_to_bounding_boxes(labels) -> dict[str, tf.Tensor]:
    """The book's label rows (..., G, 5) [class, x1, y1, x2, y2] (class -1 = padding) -> keras-cv's
    bounding-box dict {"boxes": (..., G, 4), "classes": (..., G)}, padding rows -1 in both."""
    labels = as_float32(labels)
    valid = labels[..., 0] >= 0
    return {"boxes": tf.where(valid[..., None], labels[..., 1:], -1.0), "classes": tf.where(valid, labels[..., 0], -1.0)}


def bounding_boxes_to_rows(bounding_boxes: dict) -> tf.Tensor:
    """keras-cv's dense bounding-box dict -> the book's label rows (..., G, 5); padding rows all -1
    (rows_to_bounding_boxes' inverse, bit-identical on rows whose padding is all -1)."""
    classes = as_float32(bounding_boxes["classes"])
    boxes = as_float32(bounding_boxes["boxes"])
    valid = classes >= 0
    return tf.where(valid[..., None], tf.concat([classes[..., None], boxes], axis=-1), -1.0)

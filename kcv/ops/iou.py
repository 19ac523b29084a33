"""Intersection over union, exactly the book's `box_iou`."""
from __future__ import annotations

import tensorflow as tf

from kcv.ops.boxes import as_float32, box_area


def box_iou(boxes1, boxes2) -> tf.Tensor:
    """Pairwise IoU: (..., N, 4), (..., M, 4) xyxy -> (..., N, M); leading dims broadcast.

    `inter / (area1 + area2 - inter)` with no epsilon and no +1 pixel (BOOK.md 1, rule 2): boxes
    that share only an edge have IoU 0, and two zero-area boxes give 0/0 = NaN as in the book.
    """
    boxes1 = as_float32(boxes1)
    boxes2 = as_float32(boxes2)
    areas1 = box_area(boxes1)  # (..., N)
    areas2 = box_area(boxes2)  # (..., M)
    upper_left = tf.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # (..., N, M, 2)
    lower_right = tf.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    inters = tf.maximum(lower_right - upper_left, 0.0)
    inter_areas = inters[..., 0] * inters[..., 1]  # (..., N, M)
    # Same association as the book: (a1 + a2) - inter.
    union_areas = areas1[..., :, None] + areas2[..., None, :] - inter_areas
    return inter_areas / union_areas

"""Greedy non-maximum suppression with the book's semantics on TensorFlow's NMS kernel.

Book semantics (BOOK.md 1, rule 6): process boxes by descending score, lower index first on equal
scores; a box is dropped when its IoU with an already kept box is > threshold (== is kept).
`tf.image.non_max_suppression` implements exactly that for boxes with positive area and scores
above -inf (its IoU is the book's formula, its queue breaks ties by lower index, and IoU is
symmetric in x and y so xyxy boxes can be passed unchanged). Two inputs differ and are routed to
an exact path: zero-area boxes (the book's 0/0 = NaN IoU makes the first zero-area box suppress
every later one; TensorFlow calls that IoU 0) and -inf scores (TensorFlow drops those boxes).
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from kcv.ops.boxes import as_float32, box_area


def nms_sorted(sorted_boxes: tf.Tensor, iou_threshold, max_output_size) -> tf.Tensor:
    """Exact book NMS over boxes already in processing order: (M, 4) -> (K,) int32 positions.

    The kernel gets strictly decreasing rank scores, so its order is exactly the given one
    (whatever the original scores were, -inf included); exact while M < 2**24.
    """
    num = tf.shape(sorted_boxes)[0]
    iota = tf.range(num)
    zero = tf.equal(box_area(sorted_boxes), 0.0)
    first_zero = tf.reduce_min(tf.where(zero, iota, num))
    # Later zero-area boxes meet the first one with IoU NaN, which the book's `iou <= thr` drops.
    excluded = tf.logical_and(zero, iota > first_zero)
    rank = tf.where(excluded, 0.0, tf.cast(num - iota, tf.float32))
    return tf.image.non_max_suppression(sorted_boxes, rank, max_output_size, iou_threshold=iou_threshold, score_threshold=0.5)


def _ranked_nms(boxes: tf.Tensor, scores: tf.Tensor, iou_threshold, num_candidates, max_output_size) -> tf.Tensor:
    """Exact book NMS over the `num_candidates` best boxes (top_k: lower index first on ties)."""
    order = tf.math.top_k(scores, k=num_candidates, sorted=True).indices  # (M,)
    return tf.gather(order, nms_sorted(tf.gather(boxes, order), iou_threshold, max_output_size))


def prefix_size(max_output_size, num_boxes) -> tf.Tensor:
    """How many top-scoring boxes to try first when at most `max_output_size` are kept."""
    return tf.minimum(num_boxes, tf.maximum(4 * max_output_size, 256))


def _full_nms(boxes: tf.Tensor, scores: tf.Tensor, iou_threshold, max_output_size) -> tf.Tensor:
    n = tf.shape(scores)[0]
    unusual = tf.logical_or(
        tf.reduce_any(tf.equal(box_area(boxes), 0.0)), tf.reduce_any(tf.equal(scores, float("-inf")))
    )
    return tf.cond(
        unusual,
        lambda: _ranked_nms(boxes, scores, iou_threshold, n, max_output_size),
        lambda: tf.image.non_max_suppression(boxes, scores, max_output_size, iou_threshold=iou_threshold),
    )


def nms(boxes, scores, iou_threshold, max_output_size: Optional[int] = None) -> tf.Tensor:
    """Book's `nms`: (N, 4) xyxy boxes, (N,) scores -> (K,) int32 kept indices, best first.

    `max_output_size` (not in the book) stops after that many kept boxes; the result is then the
    first `max_output_size` entries of the full answer. It is found on a top-scoring prefix
    (greedy decisions depend only on earlier boxes), falling back to all boxes when the prefix
    keeps too few. Boxes need x1 <= x2 and y1 <= y2; scores must not be NaN.
    """
    boxes = as_float32(boxes)
    scores = as_float32(scores)
    boxes = tf.reshape(boxes, [-1, 4])
    scores = tf.reshape(scores, [-1])
    iou_threshold = tf.cast(iou_threshold, tf.float32)
    n = tf.shape(scores)[0]
    if max_output_size is None:
        return _full_nms(boxes, scores, iou_threshold, n)
    k = tf.minimum(tf.cast(max_output_size, tf.int32), n)
    prefix = prefix_size(k, n)
    keep = _ranked_nms(boxes, scores, iou_threshold, prefix, k)
    return tf.cond(
        tf.logical_or(tf.shape(keep)[0] >= k, prefix >= n),
        lambda: keep,
        lambda: _full_nms(boxes, scores, iou_threshold, k),
    )

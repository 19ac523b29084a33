"""Anchor-relative box offsets with the book's 10/5 scaling (BOOK.md 1, rules 4 and 5)."""
from __future__ import annotations

import tensorflow as tf

from kcv.ops.boxes import as_float32, box_center_to_corner, box_corner_to_center


def offset_boxes(anchors, assigned_bb, eps: float = 1e-6) -> tf.Tensor:
    """(..., 4) anchors and assigned boxes (xyxy) -> (..., 4) offsets; leading dims broadcast.

    `(10*(xb-xa)/wa, 10*(yb-ya)/ha, 5*log(eps + wb/wa), 5*log(eps + hb/ha))` on centre
    coordinates; eps sits inside the log, as in the book (its printed 4.17e-06 depends on it).
    """
    c_anc = box_corner_to_center(anchors)
    c_bb = box_corner_to_center(assigned_bb)
    offset_xy = 10 * (c_bb[..., :2] - c_anc[..., :2]) / c_anc[..., 2:]
    offset_wh = 5 * tf.math.log(eps + c_bb[..., 2:] / c_anc[..., 2:])
    return tf.concat([offset_xy, offset_wh], axis=-1)


def _div_const(x: tf.Tensor, divisor: float) -> tf.Tensor:
    """x / divisor, kept a true division inside graphs.

    Grappler's constant folding rewrites `x / 10` into `x * 0.1` (not bit-identical: it changed
    ~20% of float32 results here); DivNoNan is the same IEEE division for a non-zero divisor and
    is left alone, so graphs and exported models match eager mode and the book bit for bit.
    """
    return tf.math.divide_no_nan(x, tf.constant(divisor, x.dtype))


def offset_inverse(anchors, offset_preds) -> tf.Tensor:
    """(..., 4) anchors (xyxy) and offsets -> (..., 4) predicted boxes (xyxy); no eps, no clipping."""
    anc = box_corner_to_center(anchors)
    offset_preds = as_float32(offset_preds)
    pred_xy = _div_const(offset_preds[..., :2] * anc[..., 2:], 10.0) + anc[..., :2]
    pred_wh = tf.exp(_div_const(offset_preds[..., 2:], 5.0)) * anc[..., 2:]
    return box_center_to_corner(tf.concat([pred_xy, pred_wh], axis=-1))

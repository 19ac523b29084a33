"""Anchor-relative box offsets with the book's 10/5 scaling (BOOK.md 1, rules 4 and 5)."""
from __future__ import annotations

import tensorflow as tf

from kcv.ops.boxes import box_center_to_corner, box_corner_to_center


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


def offset_inverse(anchors, offset_preds) -> tf.Tensor:
    """(..., 4) anchors (xyxy) and offsets -> (..., 4) predicted boxes (xyxy); no eps, no clipping."""
    anc = box_corner_to_center(anchors)
    offset_preds = tf.convert_to_tensor(offset_preds, dtype_hint=tf.float32)
    pred_xy = (offset_preds[..., :2] * anc[..., 2:] / 10) + anc[..., :2]
    pred_wh = tf.exp(offset_preds[..., 2:] / 5) * anc[..., 2:]
    return box_center_to_corner(tf.concat([pred_xy, pred_wh], axis=-1))

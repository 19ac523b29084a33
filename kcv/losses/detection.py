"""The book's TinySSD loss (d2l-en chapter_computer-vision/ssd.md, `calc_loss`).

Shapes: A anchors, C object classes (column 0 of the class scores is the background).
"""
from __future__ import annotations

import tensorflow as tf


def detection_loss(cls_preds, bbox_preds, cls_labels, bbox_labels, bbox_masks) -> tf.Tensor:
    """The book's calc_loss: (B, A, C+1) logits, (B, 4A), (B, A) int, (B, 4A), (B, 4A) -> (B,).

    Per image: the mean over anchors of softmax cross-entropy plus the mean over the 4A entries
    of |pred*mask - target*mask| (masked-out anchors add 0 to the sum but count in the mean).
    """
    cls = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=cls_labels, logits=cls_preds)  # (B, A)
    bbox = tf.abs(bbox_preds * bbox_masks - bbox_labels * bbox_masks)  # (B, 4A)
    return tf.reduce_mean(cls, axis=1) + tf.reduce_mean(bbox, axis=1)

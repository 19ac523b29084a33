"""Anchor-to-ground-truth assignment and training targets (BOOK.md 1, rules 3 and 4), batched.

The book loops over images in Python and over ground-truth boxes with in-place writes. Here the
images are a batch axis and the greedy per-ground-truth step is one `tf.while_loop` whose body is
vectorised over (batch, anchors, gt), so everything runs inside `tf.function` / exported graphs.
"""
from __future__ import annotations

import tensorflow as tf

from kcv.ops.argmax import first_argmax
from kcv.ops.boxes import as_float32

from kcv.ops.iou import box_iou
from kcv.ops.offsets import offset_boxes

_PADDED = -2.0  # below the book's "discarded" value -1, so padded columns never win a tie with it


def assign_anchors(anchors, gt_boxes, gt_valid=None, iou_threshold: float = 0.5) -> tf.Tensor:
    """Book's `assign_anchor_to_bbox` over a batch: (A, 4), (B, G, 4), (B, G) bool -> (B, A) int64.

    Entry = index of the assigned gt box, -1 = background. (a) every anchor whose best IoU is
    >= iou_threshold takes that box (first box on ties); (b) then, once per valid gt box, the global
    row-major argmax of the remaining IoU matrix assigns that (anchor, box) pair, overriding (a),
    and its row and column are discarded (set to -1). Book quirks kept: a gt box with IoU 0 to
    every anchor is still assigned; with more gt boxes than anchors, the first gt box is written
    into anchor 0 again. Deviations (documented in kcv.detection): gt boxes with `gt_valid` False
    (padding) are skipped exactly as if removed; zero valid gt boxes -> all -1 (the book raises);
    the anchor row is found by integer division (the book divides in float32, wrong past 2**24).
    """
    anchors = as_float32(anchors)
    gt_boxes = as_float32(gt_boxes)
    batch = tf.shape(gt_boxes)[0]
    if gt_valid is None:
        gt_valid = tf.ones(tf.shape(gt_boxes)[:2], tf.bool)
    # One always-padded column makes G >= 1, so empty label sets need no special case.
    gt_boxes = tf.concat([gt_boxes, tf.zeros([batch, 1, 4], gt_boxes.dtype)], axis=1)
    gt_valid = tf.concat([tf.cast(gt_valid, tf.bool), tf.zeros([batch, 1], tf.bool)], axis=1)
    num_anchors = tf.shape(anchors, out_type=tf.int64)[0]
    num_gt = tf.shape(gt_boxes, out_type=tf.int64)[1]

    jaccard = box_iou(anchors[None], gt_boxes)  # (B, A, G)
    valid_col = gt_valid[:, None, :]  # (B, 1, G)
    jaccard = tf.where(valid_col, jaccard, _PADDED)

    # (a) threshold assignment.
    max_ious, best_box = first_argmax(jaccard, axis=-1)  # (B, A)
    amap = tf.where(max_ious >= iou_threshold, best_box, tf.constant(-1, tf.int64))

    # (b) greedy, once per valid gt box; images with fewer valid boxes stop updating early.
    num_valid = tf.reduce_sum(tf.cast(gt_valid, tf.int32), axis=1)  # (B,)
    iota_a = tf.range(num_anchors)[None, :]  # (1, A)
    iota_g = tf.range(num_gt)[None, :]  # (1, G)
    discarded = tf.where(valid_col, tf.constant(-1.0), _PADDED)  # (B, 1, G)

    def body(t, amap, jac):
        active = (t < num_valid)[:, None]  # (B, 1)
        flat = tf.reshape(jac, [batch, -1])  # (B, A*G), row-major like the book's argmax
        _, max_idx = first_argmax(flat, axis=-1)  # (B,)
        anc_idx = max_idx // num_gt
        box_idx = max_idx % num_gt
        hit_row = tf.logical_and(active, tf.equal(iota_a, anc_idx[:, None]))  # (B, A)
        hit_col = tf.logical_and(active, tf.equal(iota_g, box_idx[:, None]))  # (B, G)
        amap = tf.where(hit_row, box_idx[:, None], amap)
        hit = tf.logical_or(hit_row[:, :, None], hit_col[:, None, :])
        jac = tf.where(hit, discarded, jac)
        return t + 1, amap, jac

    _, amap, _ = tf.while_loop(
        lambda t, *_: t < tf.reduce_max(num_valid),
        body,
        (tf.constant(0, tf.int32), amap, jaccard),
    )
    return amap


def multibox_target(anchors, labels) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Training targets: (1, A, 4) or (A, 4) anchors, (B, G, 5) labels -> offsets, mask, classes.

    Label rows are [class, x1, y1, x2, y2] (normalised); rows with class < 0 are padding and are
    skipped (the book does not skip them: there a padded row grabs an anchor). Returns
    bbox_offset (B, 4A) float32 (masked: background rows are +-0), bbox_mask (B, 4A) float32 and
    class_labels (B, A) int64 with gt class + 1 (truncated like torch `.long()`), 0 = background.
    An image with no valid row gets all-background targets. No gradient flows through targets.
    """
    anchors = as_float32(anchors)
    anchors = tf.reshape(anchors, [-1, 4])  # (A, 4)
    labels = as_float32(labels)
    batch = tf.shape(labels)[0]
    # A padded row at the end lets gathers work for images without ground truth.
    labels = tf.concat([labels, tf.tile(tf.constant([[[-1.0, 0, 0, 0, 0]]]), [batch, 1, 1])], axis=1)
    classes, boxes = labels[..., 0], labels[..., 1:]
    amap = assign_anchors(anchors, boxes, classes >= 0)  # (B, A)
    positive = amap >= 0
    index = tf.maximum(amap, 0)
    mask = tf.cast(positive, tf.float32)[..., None]  # (B, A, 1)
    class_labels = tf.where(
        positive, tf.cast(tf.gather(classes, index, batch_dims=1), tf.int64) + 1, tf.constant(0, tf.int64)
    )
    assigned_bb = tf.where(positive[..., None], tf.gather(boxes, index, batch_dims=1), 0.0)  # (B, A, 4)
    offset = offset_boxes(anchors[None], assigned_bb) * mask  # zeros*mask gives -0.0 like the book
    bbox_mask = tf.tile(mask, [1, 1, 4])
    return (
        tf.stop_gradient(tf.reshape(offset, [batch, -1])),
        tf.stop_gradient(tf.reshape(bbox_mask, [batch, -1])),
        tf.stop_gradient(class_labels),
    )

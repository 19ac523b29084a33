"""The book's object-detection API (d2l names, argument order, shapes and numbers), on kcv.ops.

Everything is float32 TensorFlow, batch-vectorised, and runs eagerly, inside `tf.function`, a
Keras `train_step` and exported graphs. Images are NHWC (the book is NCHW). Book code the port
follows: d2l-en `chapter_computer-vision/anchor.md` and `bounding-box.md` (PyTorch tab).

Deliberate differences from the book's PyTorch code, all at inputs where it fails or misbehaves:

* `multibox_target` skips label rows whose class is < 0 (padding), as if they were not there;
  the book does not, so a padded row grabs an anchor with class 0 and offsets of -69.08.
* An image without (valid) ground truth gives all-background targets; the book raises.
* `assign_anchor_to_bbox` finds the anchor of the flat argmax by integer division; the book
  divides in float32, which picks the wrong row once anchors * gt boxes exceeds 2**24.
* Ties go to the lower index everywhere (the book's PyTorch NMS sort is only stable up to 16
  boxes; its printed outputs agree with lower-index-first).
* `nms` and `multibox_detection` take boxes with x1 <= x2, y1 <= y2 and non-NaN scores.
* `nms` returns int32 indices and takes an optional `max_output_size`; `assign_anchor_to_bbox`
  and `multibox_target` classes are int64 like torch.long. `assign_anchor_to_bbox` has no
  `device` argument.
"""
from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from kcv.ops.anchors import multibox_prior as _multibox_prior
from kcv.ops.boxes import as_float32, box_center_to_corner, box_corner_to_center
from kcv.ops.decode import BOOK_POS_THRESHOLD, detections_padded
from kcv.ops.decode import multibox_detection as _multibox_detection
from kcv.ops.iou import box_iou
from kcv.ops.matching import assign_anchors
from kcv.ops.matching import multibox_target as _multibox_target
from kcv.ops.nms import nms as _nms
from kcv.ops.offsets import offset_boxes, offset_inverse

__all__ = [
    "box_corner_to_center",
    "box_center_to_corner",
    "multibox_prior",
    "box_iou",
    "assign_anchor_to_bbox",
    "offset_boxes",
    "multibox_target",
    "offset_inverse",
    "nms",
    "multibox_detection",
    "detections_padded",
]


def multibox_prior(data, sizes: Sequence[float], ratios: Sequence[float]) -> tf.Tensor:
    """(batch, H, W, C) -> (1, H*W*(n+m-1), 4) normalised xyxy anchors, pixel-major, unclipped.

    Per pixel: (s1,r1)..(sn,r1),(s1,r2)..(s1,rm); width s*sqrt(r)*H/W, height s/sqrt(r).
    """
    return _multibox_prior(data, sizes, ratios)


def assign_anchor_to_bbox(ground_truth, anchors, iou_threshold: float = 0.5) -> tf.Tensor:
    """(G, 4) gt boxes, (A, 4) anchors -> (A,) int64 gt index per anchor, -1 = background.

    Anchors with best IoU >= iou_threshold take that box; then, once per gt box, the largest
    remaining IoU pair (first in row-major order) is assigned and its row and column discarded.
    G = 0 gives all -1 (the book raises).
    """
    return assign_anchors(anchors, tf.reshape(as_float32(ground_truth), [1, -1, 4]), None, iou_threshold)[0]


def multibox_target(anchors, labels) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(1, A, 4) anchors, (B, G, 5) labels [class, x1, y1, x2, y2] ->
    (bbox_offset (B, 4A), bbox_mask (B, 4A), class_labels (B, A) int64; 0 = background).

    Rows with class < 0 are padding and skipped; no valid row -> all background.
    """
    return _multibox_target(anchors, labels)


def nms(boxes, scores, iou_threshold, max_output_size: Optional[int] = None) -> tf.Tensor:
    """(N, 4), (N,) -> kept indices (K,) int32, best first; IoU > threshold suppresses."""
    return _nms(boxes, scores, iou_threshold, max_output_size)


def multibox_detection(
    cls_probs, offset_preds, anchors, nms_threshold: float = 0.5, pos_threshold: float = BOOK_POS_THRESHOLD
) -> tf.Tensor:
    """(B, C+1, A), (B, 4A), (1, A, 4) -> (B, A, 6) rows [class or -1, conf, x1, y1, x2, y2].

    Kept rows in NMS order, then the other anchors by index (class -1); rows with
    conf < pos_threshold get class -1 and conf 1 - conf.
    """
    return _multibox_detection(cls_probs, offset_preds, anchors, nms_threshold, pos_threshold)

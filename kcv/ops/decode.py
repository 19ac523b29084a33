"""Turning class probabilities and offsets into detections: the book's `multibox_detection`."""
from __future__ import annotations

import tensorflow as tf

from kcv.ops.argmax import first_argmax
from kcv.ops.boxes import as_float32
from kcv.ops.nms import nms, nms_sorted, prefix_size
from kcv.ops.offsets import offset_inverse

BOOK_POS_THRESHOLD = 0.009999999


def _decode(cls_probs, offset_preds, anchors) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """-> confidence (B, A), class scores (B, C, A) without background, boxes (B, A, 4)."""
    cls_probs = as_float32(cls_probs)
    offset_preds = as_float32(offset_preds)
    anchors = tf.reshape(as_float32(anchors), [-1, 4])  # (A, 4)
    batch = tf.shape(cls_probs)[0]
    scores = cls_probs[:, 1:, :]  # non-background rows
    boxes = offset_inverse(anchors[None], tf.reshape(offset_preds, [batch, -1, 4]))
    return tf.reduce_max(scores, axis=1), scores, boxes


def _class_ids(scores: tf.Tensor) -> tf.Tensor:
    """(..., C, K) class scores -> (..., K) int32 class of the max, first class on ties."""
    return first_argmax(scores, axis=-2, dtype=tf.int32)[1]


def _per_image(fn, elems, signature, batch_size: int | None):
    """Run `fn` per image: unrolled when the batch size is static (independent kernels then run
    in parallel on the inter-op pool), else a parallel tf.map_fn (dynamic batch, exported graphs).
    A batch of zero images gives empty outputs without calling `fn`."""
    specs = tuple(signature) if isinstance(signature, (tuple, list)) else (signature,)

    def empty():
        return tuple(tf.zeros([0] + [d if d is not None else 0 for d in s.shape], s.dtype) for s in specs)

    if batch_size == 0:
        outs = empty()
    elif batch_size is not None:
        per = [fn(tuple(e[i] for e in elems)) for i in range(batch_size)]
        per = [p if isinstance(p, tuple) else (p,) for p in per]
        outs = tuple(tf.stack([p[j] for p in per]) for j in range(len(specs)))
    else:
        mapped = lambda: tf.map_fn(fn, elems, fn_output_signature=signature, parallel_iterations=16)  # noqa: E731
        outs = tf.cond(tf.shape(elems[0])[0] > 0, lambda: tuple(_as_tuple(mapped())), empty)
    return outs if isinstance(signature, (tuple, list)) else outs[0]


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


_MAX_UNROLL = 64


def _static_batch(x) -> int | None:
    b = x.shape[0] if hasattr(x, "shape") else None
    return b if b is not None and 0 <= b <= _MAX_UNROLL else None


def multibox_detection(
    cls_probs, offset_preds, anchors, nms_threshold: float = 0.5, pos_threshold: float = BOOK_POS_THRESHOLD
) -> tf.Tensor:
    """Book's `multibox_detection`: (B, C+1, A), (B, 4A), (1, A, 4) -> (B, A, 6) float32.

    Rows [class_id or -1, confidence, x1, y1, x2, y2]. Per image: confidence = max over the
    non-background classes, boxes = offset_inverse(anchors, offsets), class-agnostic NMS; rows in
    NMS keep order, then the non-kept anchors in increasing index with class -1 (confidence kept);
    finally rows with confidence < pos_threshold (compared in float32) get class -1 and confidence
    1 - confidence. Detections (class >= 0) therefore form a prefix of every image's rows.
    """
    conf, scores, boxes = _decode(cls_probs, offset_preds, anchors)
    class_id = _class_ids(scores)  # (B, A); only kept rows keep it
    num_anchors = tf.shape(conf)[1]

    def order_one(args):
        b, c = args
        keep = nms(b, c, nms_threshold)  # (K,)
        kept = tf.scatter_nd(keep[:, None], tf.ones_like(keep, tf.bool), [num_anchors])
        non_keep = tf.cast(tf.where(tf.logical_not(kept))[:, 0], tf.int32)
        return tf.concat([keep, non_keep], 0), tf.shape(keep)[0]  # (A,) permutation, K

    signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32))
    order, num_kept = _per_image(order_one, (boxes, conf), signature, _static_batch(conf))
    order = tf.reshape(order, tf.shape(conf))  # (B, A)
    kept_row = tf.range(num_anchors)[None, :] < num_kept[:, None]  # (B, A)
    conf = tf.gather(conf, order, batch_dims=1)
    class_id = tf.where(kept_row, tf.gather(class_id, order, batch_dims=1), -1)
    boxes = tf.gather(boxes, order, batch_dims=1)
    below = conf < tf.constant(pos_threshold, tf.float32)  # torch compares in float32 too
    class_id = tf.where(below, -1, class_id)
    conf = tf.where(below, 1 - conf, conf)
    return tf.concat([tf.cast(class_id, tf.float32)[..., None], conf[..., None], boxes], axis=-1)


def detections_padded(
    cls_probs,
    offset_preds,
    anchors,
    nms_threshold: float = 0.5,
    pos_threshold: float = BOOK_POS_THRESHOLD,
    max_detections: int = 100,
) -> dict[str, tf.Tensor]:
    """Fixed-size detections for serving graphs, equal to the first `max_detections` rows of
    `multibox_detection` whose class is not -1, padded.

    (B, C+1, A), (B, 4A), (1, A, 4) -> {"boxes": (B, D, 4) xyxy normalised, "scores": (B, D),
    "classes": (B, D) int32, "num_detections": (B,) int32}; padding rows have boxes 0, score 0,
    class -1. Greedy NMS decisions depend only on higher-scoring boxes, so only the top
    4*D (at least 256) anchors per image are decoded and suppressed; an image whose prefix keeps
    fewer than D boxes falls back to all of its anchors. Same answer, a fraction of the work.
    """
    cls_probs = as_float32(cls_probs)
    offset_preds = as_float32(offset_preds)
    anchors = tf.reshape(as_float32(anchors), [-1, 4])  # (A, 4)
    batch = tf.shape(cls_probs)[0]
    num_anchors = tf.shape(cls_probs)[2]
    offsets = tf.reshape(offset_preds, [batch, -1, 4])  # (B, A, 4)
    scores = cls_probs[:, 1:, :]  # (B, C, A)
    conf = tf.reduce_max(scores, axis=1)  # (B, A)
    pos = tf.constant(pos_threshold, tf.float32)
    prefix = prefix_size(tf.constant(max_detections, tf.int32), num_anchors)
    top = tf.math.top_k(conf, k=prefix, sorted=True)  # batched; lower index first on ties
    top_boxes = offset_inverse(tf.gather(anchors, top.indices), tf.gather(offsets, top.indices, batch_dims=1))

    def detect_one(args):
        order, top_b, c, o, s = args  # (M,), (M, 4), (A,), (A, 4), (C, A)
        selected = nms_sorted(top_b, nms_threshold, max_detections)
        enough = tf.logical_or(tf.shape(selected)[0] >= max_detections, prefix >= num_anchors)

        def from_prefix():
            return tf.gather(order, selected), tf.gather(top_b, selected)

        def from_all():  # rare: the prefix kept too few boxes
            all_boxes = offset_inverse(anchors, o)
            keep = nms(all_boxes, c, nms_threshold, max_output_size=max_detections)
            return keep, tf.gather(all_boxes, keep)

        keep, kept_boxes = tf.cond(enough, from_prefix, from_all)
        kept_conf = tf.gather(c, keep)
        # Kept confidences descend, so the ones >= pos_threshold are a prefix.
        count = tf.reduce_sum(tf.cast(kept_conf >= pos, tf.int32))
        pad = [[0, max_detections - count]]
        return (
            tf.pad(kept_boxes[:count], pad + [[0, 0]]),
            tf.pad(kept_conf[:count], pad),
            tf.pad(_class_ids(tf.gather(s, keep[:count], axis=1)), pad, constant_values=-1),  # kept rows only
            count,
        )

    signature = (
        tf.TensorSpec([max_detections, 4], tf.float32),
        tf.TensorSpec([max_detections], tf.float32),
        tf.TensorSpec([max_detections], tf.int32),
        tf.TensorSpec([], tf.int32),
    )
    elems = (top.indices, top_boxes, conf, offsets, scores)
    out_boxes, out_scores, classes, num = _per_image(detect_one, elems, signature, _static_batch(cls_probs))
    return {"boxes": out_boxes, "scores": out_scores, "classes": classes, "num_detections": num}

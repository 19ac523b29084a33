"""kcv's detection formats <-> keras-cv's bounding-box dictionaries.

keras-cv is imported lazily (only `convert_format` needs it); every adapter takes numpy arrays or
tf tensors, eager or inside a tf.function (unknown batch size included), and returns tf tensors.

Formats (B images, D detection rows, G ground-truth rows):

  kcv padded detections (`TinySSD.detect`, `outputs_to_padded`, the exported detector):
    {"boxes" (B, D, 4) float32 xyxy, "scores" (B, D) float32 descending,
     "classes" (B, D) int64 0-based, "num_detections" (B,) int32}
    the first num_detections rows are detections; padding rows have box 0, score 0, class -1.
  keras-cv predictions (`keras_cv.layers.NonMaxSuppression`, `BoxCOCOMetrics`' y_pred):
    {"boxes" (B, D, 4), "confidence" (B, D), "classes" (B, D), "num_detections" (B,) int32}
    padding rows -1 in boxes, confidence and classes (`keras_cv.bounding_box.mask_invalid_detections`).
  kcv labels (the book's multibox_target input): (B, G, 5) float32 rows [class, x1, y1, x2, y2],
    padding rows all -1.
  keras-cv ground truth (`kcv.data.input.detection_dataset`, `BoxCOCOMetrics`' y_true):
    {"boxes" (B, G, 4) float32, "classes" (B, G) float32}, padding rows -1 in both.

Boxes keep whatever format and unit they are in (kcv's are xyxy; normalised for TinySSD, i.e.
keras-cv's "rel_xyxy", pixels in the exported detector, keras-cv's "xyxy"): the adapters change
the container, never a coordinate, so every valid value passes through bit-identically.
Ragged keras-cv inputs (`output_ragged=True`, ragged ground truth) are densified with -1 padding.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from kcv.ops.boxes import as_float32, bounding_boxes_to_rows, rows_to_bounding_boxes


def _dense(x, default=-1) -> tf.Tensor:
    if isinstance(x, tf.RaggedTensor):
        return x.to_tensor(default_value=tf.cast(default, x.dtype))
    return tf.convert_to_tensor(x)


def _classes(x) -> tf.Tensor:
    """Class ids as given (ints stay ints); float64 and numpy float arrays become float32."""
    x = _dense(x)
    return tf.cast(x, tf.float32) if x.dtype == tf.float64 else x


def _row_mask(num_detections, rows) -> tf.Tensor:
    """(B,) counts, D rows -> (B, D) bool: index < count."""
    return tf.range(rows)[None, :] < tf.cast(num_detections, tf.int32)[:, None]


def to_keras_cv_predictions(padded: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """kcv padded detections -> keras-cv's prediction dict (padding rows -1).

    {"boxes" (B, D, 4), "scores" (B, D), "classes" (B, D), "num_detections" (B,)} ->
    {"boxes" (B, D, 4) float32, "confidence" (B, D) float32, "classes" (B, D) (the given integer
    dtype; -1 padding), "num_detections" (B,) int32}. Rows at and after num_detections become -1;
    without "num_detections" the valid rows are those with class >= 0 (and are counted).
    """
    boxes = as_float32(_dense(padded["boxes"]))
    scores = as_float32(_dense(padded["scores"]))
    classes = _classes(padded["classes"])
    if "num_detections" in padded and padded["num_detections"] is not None:
        num = tf.cast(tf.convert_to_tensor(padded["num_detections"]), tf.int32)
        valid = _row_mask(num, tf.shape(scores)[-1])
    else:
        valid = classes >= 0
        num = tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1)
    return {
        "boxes": tf.where(valid[..., None], boxes, -1.0),
        "confidence": tf.where(valid, scores, -1.0),
        "classes": tf.where(valid, classes, tf.constant(-1, classes.dtype)),
        "num_detections": num,
    }


def from_keras_cv_predictions(pred: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """keras-cv prediction dict -> kcv padded detections (the exported detector's contract).

    {"boxes" (B, D, 4), "confidence" (B, D), "classes" (B, D)[, "num_detections" (B,)]} ->
    {"boxes" (B, D, 4) float32 (padding 0), "scores" (B, D) float32 (padding 0), "classes" (B, D)
    int64 (padding -1), "num_detections" (B,) int32}. With "num_detections" the first that many
    rows are the detections (as NonMaxSuppression gives them); without it the rows with class >= 0
    are, moved in order to the front. Row order is kept otherwise (NonMaxSuppression's rows are
    already by descending confidence).
    """
    boxes = as_float32(_dense(pred["boxes"]))
    scores = as_float32(_dense(pred["confidence"]))
    classes = _classes(pred["classes"])
    rows = tf.shape(scores)[-1]
    if "num_detections" in pred and pred["num_detections"] is not None:
        num = tf.cast(tf.convert_to_tensor(pred["num_detections"]), tf.int32)
    else:
        keep = classes >= 0
        order = tf.argsort(tf.cast(tf.logical_not(keep), tf.int32), axis=-1, stable=True)  # valid rows first
        boxes = tf.gather(boxes, order, batch_dims=1)
        scores = tf.gather(scores, order, batch_dims=1)
        classes = tf.gather(classes, order, batch_dims=1)
        num = tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1)
    valid = _row_mask(num, rows)
    return {
        "boxes": tf.where(valid[..., None], boxes, 0.0),
        "scores": tf.where(valid, scores, 0.0),
        "classes": tf.where(valid, tf.cast(classes, tf.int64), tf.constant(-1, tf.int64)),
        "num_detections": num,
    }


def labels_to_keras_cv(labels) -> dict[str, tf.Tensor]:
    """kcv labels (B, G, 5) rows [class, x1, y1, x2, y2] (class -1 = padding) -> keras-cv ground
    truth {"boxes" (B, G, 4) float32, "classes" (B, G) float32}, padding rows -1 in both.

    The same conversion as `kcv.data.input.detection_dataset` (kcv.ops.boxes.rows_to_bounding_boxes);
    any leading shape (..., G, 5) works.
    """
    return rows_to_bounding_boxes(labels)


def keras_cv_to_labels(bounding_boxes: Mapping[str, Any]) -> tf.Tensor:
    """keras-cv ground truth {"boxes" (B, G, 4), "classes" (B, G)} (dense or ragged; class < 0 =
    padding) -> kcv labels (B, G, 5) float32, padding rows all -1 (kcv's label padding), so
    `keras_cv_to_labels(labels_to_keras_cv(labels))` is bit-identical to labels padded with -1 rows.
    """
    dense = {"boxes": _dense(bounding_boxes["boxes"]), "classes": _dense(bounding_boxes["classes"])}
    return bounding_boxes_to_rows(dense)


def convert_format(boxes, source: str, target: str, images=None, image_shape=None) -> Any:
    """`keras_cv.bounding_box.convert_format(boxes, source, target, images, image_shape)` (float32).

    Formats are keras-cv's ("xyxy", "rel_xyxy", "center_xywh", "xywh", "yxyx", ...; case
    insensitive); relative <-> absolute needs `images` or `image_shape`. `boxes` may be a
    tensor, an array or a keras-cv dict (its "boxes" converted). keras-cv takes rank 2 or 3 only;
    without `images`, other ranks ((4,), (..., N, 4)) are reshaped around the call. kcv's own
    conversions agree bit for bit: "xyxy" <-> "center_xywh" is kcv.ops.boxes.box_corner_to_center /
    box_center_to_corner (same operations in the same order; x / 2 and 0.5 * x round alike).
    """
    import keras_cv

    fn = keras_cv.bounding_box.convert_format
    if isinstance(boxes, Mapping):
        out = dict(boxes)
        out["boxes"] = convert_format(boxes["boxes"], source, target, images, image_shape)
        return out
    boxes = as_float32(boxes)
    rank = boxes.shape.rank
    if images is None and rank is not None and rank not in (2, 3):
        shape = tf.shape(boxes)
        flat = fn(tf.reshape(boxes, [-1, 4]), source=source, target=target, image_shape=image_shape)
        return tf.reshape(flat, shape)
    return fn(boxes, source=source, target=target, images=images, image_shape=image_shape)

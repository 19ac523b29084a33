"""The one tf.train.Example schema every ExampleGen writes and every input function reads.

Features:
  id            bytes    stable example id
  image/encoded bytes    PNG or JPEG of an RGB image (decode_image handles both)
  label         int64    index into the label vocabulary, -1 when unlabelled
  label/text    bytes    the label's name ("" when unlabelled)
  objects/bbox  float[]  detection boxes, flattened (N*4), normalised xyxy (detection data; empty otherwise)
  objects/label int64[]  detection classes, N, 0-based (detection data; empty otherwise)
  features      float[]  a feature vector for non-image data (the toy GAN's 2-D points); empty otherwise
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "label/text": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "objects/bbox": tf.io.VarLenFeature(tf.float32),
    "objects/label": tf.io.VarLenFeature(tf.int64),
    "features": tf.io.VarLenFeature(tf.float32),
}


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def make_example(
    example_id: str,
    encoded_image: bytes,
    label: int = -1,
    label_text: str = "",
    boxes: Sequence[Sequence[float]] | None = None,
    box_labels: Sequence[int] | None = None,
    features: Sequence[float] | None = None,
) -> tf.train.Example:
    """Build one Example. `boxes` are (N, 4) normalised xyxy with `box_labels` (N,)."""
    flat = [float(c) for box in (boxes or []) for c in box]
    feature = {
        "id": _bytes(example_id.encode("utf-8")),
        "image/encoded": _bytes(encoded_image),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "label/text": _bytes(label_text.encode("utf-8")),
        "objects/bbox": tf.train.Feature(float_list=tf.train.FloatList(value=flat)),
        "objects/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(c) for c in (box_labels or [])])),
        "features": tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in (features if features is not None else [])])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parse one serialized Example; boxes come back dense as (N, 4), their labels as (N,)."""
    ex = tf.io.parse_single_example(serialized, FEATURES)
    ex["objects/bbox"] = tf.reshape(tf.sparse.to_dense(ex["objects/bbox"]), (-1, 4))
    ex["objects/label"] = tf.sparse.to_dense(ex["objects/label"])
    ex["features"] = tf.sparse.to_dense(ex["features"])
    return ex


def decode_image(encoded: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """Encoded PNG/JPEG -> (H, W, channels) uint8. Sources store RGB; channels=1 converts to grey."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    if channels == 1:
        image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
    return image

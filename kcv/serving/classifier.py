"""Export an image classifier as a SavedModel for TF Serving (DESIGN.md section 6).

Signatures (both return the same dict):
  serving_default: image_bytes  tf.string [None]          PNG/JPEG/GIF/BMP, any size up to max_image_pixels
  serving_images:  images       tf.uint8  [None, H, W, C] already at the model's size
  -> probabilities float32 [None, K], classes int64 [None], class_names string [None]
The loaded object also carries `class_names` (string [K]): the vocabulary, in output order,
`max_image_pixels` (int64 scalar): the limit serving_default enforces, `submission_format`
(string scalar): the Kaggle submission kcv-predict writes with it by default, "labels"
(`id,label`, CIFAR-10) or "probabilities" (`id,<class_names>...`, dog breeds), and
`test_time_flip` (bool scalar): whether the probabilities are the softmax of the mean of the
logits of each image and its left-right mirror (test-time augmentation, fixed at export), and
`test_time_translate` (bool scalar): whether they also average the image shifted by one pixel
up-left and down-right (reflected border; with their mirrors under test_time_flip), weighted
half and half against the unshifted views: airbench's test-time augmentation "level 2".
Decoding, resizing and normalisation all run inside the graph; the model is called with
training=False so no augmentation or dropout survives export.
Guarded: serving_default reads each image's size from its header (PNG, JPEG, GIF, BMP;
`kcv.serving.image_header`) and answers InvalidArgumentError, before decoding anything, for an
unreadable header or width x height over `max_image_pixels` (fixed at export). An empty batch
answers empty outputs (probabilities [0, K]) in both signatures.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS
from kcv.data.preprocess import resize_for_model
from kcv.serving.archive import write_archive
from kcv.serving.image_header import guarded_decode

DEFAULT_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "serving_images"
SUBMISSION_FORMATS = ("labels", "probabilities")


def build_classifier_archive(
    model: keras.Model,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    channels: int = 3,
    resize_mode: str = "stretch",
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    submission_format: str = "labels",
    test_time_flip: bool = False,
    test_time_translate: bool = False,
) -> keras.export.ExportArchive:
    """An ExportArchive with the two signatures above. `model` maps float [0, 255] images to logits.

    serving_default refuses (InvalidArgumentError, before decoding) images over `max_image_pixels`.
    submission_format: one of SUBMISSION_FORMATS, recorded as `loaded.submission_format`.
    test_time_flip: average the logits of each image and its mirror (one model call on 2N images).
    test_time_translate: 0.5 x the mean logits of the unshifted views + 0.5 x the mean of the
      views shifted by (-1, -1) and (+1, +1) pixels, reflected borders (one call on 3N or 6N images).
    """
    if int(max_image_pixels) < 1:
        raise ValueError(f"export_classifier: max_image_pixels must be >= 1, got {max_image_pixels}")
    if submission_format not in SUBMISSION_FORMATS:
        raise ValueError(f"export_classifier: submission_format must be one of {', '.join(SUBMISSION_FORMATS)}, "
                         f"got {submission_format!r}")
    height, width = int(image_size[0]), int(image_size[1])
    num_classes = len(class_names)
    archive = keras.export.ExportArchive()
    archive.track(model)
    names = tf.Variable(list(class_names), trainable=False, dtype=tf.string, name="class_names")
    limit = tf.Variable(int(max_image_pixels), trainable=False, dtype=tf.int64, name="max_image_pixels")
    submission = tf.Variable(submission_format, trainable=False, dtype=tf.string, name="submission_format")
    flip = tf.Variable(bool(test_time_flip), trainable=False, dtype=tf.bool, name="test_time_flip")
    translate = tf.Variable(bool(test_time_translate), trainable=False, dtype=tf.bool, name="test_time_translate")
    # ExportArchive exposes no public way to attach a plain resource; these attributes are what
    # `tf.saved_model.load(path).class_names` / `.max_image_pixels` return.
    archive._tf_trackable.class_names = names
    archive._tf_trackable.max_image_pixels = limit
    archive._tf_trackable.submission_format = submission
    archive._tf_trackable.test_time_flip = flip
    archive._tf_trackable.test_time_translate = translate

    def empty() -> dict[str, tf.Tensor]:
        return {"probabilities": tf.zeros([0, num_classes]), "classes": tf.zeros([0], tf.int64),
                "class_names": tf.zeros([0], tf.string)}

    def views(x: tf.Tensor) -> list[tf.Tensor]:
        return [x, tf.reverse(x, axis=[2])] if test_time_flip else [x]

    def run(images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.cast(images, tf.float32)  # (N, H, W, C)
        plain = views(x)
        shifted = []
        if test_time_translate:
            padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")  # (N, H+2, W+2, C)
            shifted = views(padded[:, :height, :width]) + views(padded[:, 2:, 2:])
        # One model call on every view stacked, then each view's (N, K) logits.
        every = tf.cast(model(tf.concat(plain + shifted, axis=0), training=False), tf.float32)
        per_view = tf.split(every, len(plain) + len(shifted), axis=0)
        logits = tf.add_n(per_view[:len(plain)]) / len(plain)  # (N, K)
        if shifted:
            logits = 0.5 * logits + 0.5 * tf.add_n(per_view[len(plain):]) / len(shifted)
        probabilities = tf.nn.softmax(logits, axis=-1)
        classes = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "classes": classes, "class_names": tf.gather(names, classes)}

    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # An empty request answers empty outputs (TF's conv kernels mishandle a batch of 0).
        return tf.cond(tf.shape(images)[0] > 0, lambda: run(images), empty)

    def from_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def one(data):
            return resize_for_model(guarded_decode(data, channels, limit), (height, width), resize_mode)

        images = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec((height, width, channels), tf.uint8))
        return predict(images)

    archive.add_endpoint(DEFAULT_SIGNATURE, from_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint(IMAGES_SIGNATURE, predict,
                         input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")])
    return archive


def export_classifier(model: keras.Model, path: str, class_names: Sequence[str], image_size: tuple[int, int],
                      channels: int = 3, resize_mode: str = "stretch",
                      max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, submission_format: str = "labels",
                      test_time_flip: bool = False, test_time_translate: bool = False) -> str:
    """Write the classifier SavedModel to `path` atomically; returns `path`.

    Guarded: serving_default refuses, from the header and before decoding, images whose width x
    height exceeds `max_image_pixels` (recorded as `loaded.max_image_pixels`) or whose header is
    not PNG/JPEG/GIF/BMP; empty batches answer empty outputs. `submission_format` ("labels" or
    "probabilities") is what kcv-predict writes with this model unless told otherwise.
    `test_time_flip`: the probabilities come from the mean of the logits of each image and its
    left-right mirror (recorded as `loaded.test_time_flip`); `test_time_translate`: also of the
    image shifted by one pixel up-left and down-right (`loaded.test_time_translate`).
    """
    return write_archive(build_classifier_archive(model, class_names, image_size, channels, resize_mode,
                                                  max_image_pixels, submission_format, test_time_flip,
                                                  test_time_translate), path)

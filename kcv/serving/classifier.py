"""Export an image classifier as a SavedModel for TF Serving (DESIGN.md section 6).

Signatures (both return the same dict):
  serving_default: image_bytes  tf.string [None]          PNG/JPEG of any size
  serving_images:  images       tf.uint8  [None, H, W, C] already at the model's size
  -> probabilities float32 [None, K], classes int64 [None], class_names string [None]
The loaded object also carries `class_names` (string [K]): the vocabulary, in output order.
Decoding, resizing and normalisation all run inside the graph; the model is called with
training=False so no augmentation or dropout survives export.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from kcv.data.preprocess import resize_for_model
from kcv.data.schema import decode_image
from kcv.serving.archive import write_archive

DEFAULT_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "serving_images"


def build_classifier_archive(
    model: keras.Model,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    channels: int = 3,
    resize_mode: str = "stretch",
) -> keras.export.ExportArchive:
    """An ExportArchive with the two signatures above. `model` maps float [0, 255] images to logits."""
    height, width = int(image_size[0]), int(image_size[1])
    archive = keras.export.ExportArchive()
    archive.track(model)
    names = tf.Variable(list(class_names), trainable=False, dtype=tf.string, name="class_names")
    # ExportArchive exposes no public way to attach a plain resource; this attribute is what
    # `tf.saved_model.load(path).class_names` returns.
    archive._tf_trackable.class_names = names

    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(tf.cast(images, tf.float32), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        classes = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "classes": classes, "class_names": tf.gather(names, classes)}

    def from_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def one(data):
            return resize_for_model(decode_image(data, channels), (height, width), resize_mode)

        images = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec((height, width, channels), tf.uint8))
        return predict(images)

    archive.add_endpoint(DEFAULT_SIGNATURE, from_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint(IMAGES_SIGNATURE, predict,
                         input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")])
    return archive


def export_classifier(model: keras.Model, path: str, class_names: Sequence[str], image_size: tuple[int, int],
                      channels: int = 3, resize_mode: str = "stretch") -> str:
    """Write the classifier SavedModel to `path` atomically; returns `path`."""
    return write_archive(build_classifier_archive(model, class_names, image_size, channels, resize_mode), path)

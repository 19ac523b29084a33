"""Export a detector (TinySSD, kcv's keras-cv RetinaNet) as a SavedModel for TF Serving (DESIGN.md section 6).

Signatures (both return the same dict; D = max_detections):
  serving_default: image_bytes  tf.string [None]               PNG/JPEG/GIF/BMP, any size up to max_image_pixels
  serving_images:  images       tf.uint8  [None, H, W, 3]       already at the model's size
  -> boxes           float32 [None, D, 4]  xyxy in PIXELS of the image that was sent (for
                                           serving_default the original, before resizing),
                                           clipped to the image; padding rows are 0
     scores          float32 [None, D]     confidence of the best object class, descending
     classes         int64   [None, D]     0-based object class, -1 for padding rows
     num_detections  int32   [None]        valid rows per image
Inside the graph: decode, resize to the model's size (bilinear with antialias, the same
`resize_for_model` the classifiers use), then `model.detect` (training=False): for TinySSD with
nms="kcv" the book's decoding (softmax, offsets applied to the anchors, the book's class-agnostic
greedy NMS: `kcv.detection.detections_padded`, equal to the first rows of `multibox_detection`),
keeping rows whose confidence is >= score_threshold; nms="keras_cv" runs
keras_cv.layers.NonMaxSuppression on the same decoded boxes instead. Boxes are scaled from normalised to pixels and
clipped to the image after NMS, so the scores and ranking equal the in-memory `TinySSD.detect`.
Guarded: serving_default reads each image's size from its header (PNG, JPEG, GIF, BMP;
`kcv.serving.image_header`) and answers InvalidArgumentError, before decoding anything, for an
unreadable header or width x height over `max_image_pixels` (fixed at export, carried as the
loaded object's `max_image_pixels`, int64 scalar). An empty batch answers empty outputs.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS
from kcv.data.preprocess import resize_for_model
from kcv.serving.archive import write_archive
from kcv.serving.image_header import guarded_decode

DEFAULT_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "serving_images"
OUTPUT_KEYS = ("boxes", "scores", "classes", "num_detections")
NMS_CHOICES = ("kcv", "keras_cv")


def to_pixel_boxes(boxes: tf.Tensor, heights: tf.Tensor, widths: tf.Tensor) -> tf.Tensor:
    """(B, D, 4) normalised xyxy, (B,) image sizes -> (B, D, 4) pixel xyxy clipped to the image."""
    w = tf.cast(widths, tf.float32)[:, None]
    h = tf.cast(heights, tf.float32)[:, None]
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    return tf.stack([
        tf.clip_by_value(x1 * w, 0.0, w), tf.clip_by_value(y1 * h, 0.0, h),
        tf.clip_by_value(x2 * w, 0.0, w), tf.clip_by_value(y2 * h, 0.0, h),
    ], axis=-1)


def build_detector_archive(model: keras.Model, image_size: tuple[int, int] = (256, 256), max_detections: int = 100,
                           nms_threshold: float = 0.5, score_threshold: float = 0.01,
                           max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, nms: str = "kcv"
                           ) -> keras.export.ExportArchive:
    """An ExportArchive with the two signatures above.

    `model.detect(images float [0, 255], max_detections=, nms_threshold=, score_threshold=, nms=)`
    must return the padded dict of `kcv.models.tiny_ssd.outputs_to_padded` (boxes normalised
    xyxy), as TinySSD and kcv's RetinaNet do; nms: "kcv" (the book's class-agnostic NMS) or
    "keras_cv" (keras_cv.layers.NonMaxSuppression, also class-agnostic; thresholds strict/inclusive differ). serving_default refuses
    (InvalidArgumentError, before decoding) images over `max_image_pixels`.
    """
    if nms not in NMS_CHOICES:
        raise ValueError(f"export_detector: nms must be one of {', '.join(NMS_CHOICES)}, got {nms!r}")
    height, width = int(image_size[0]), int(image_size[1])
    max_detections = int(max_detections)
    if max_detections < 1:
        raise ValueError(f"export_detector: max_detections must be >= 1, got {max_detections}")
    if int(max_image_pixels) < 1:
        raise ValueError(f"export_detector: max_image_pixels must be >= 1, got {max_image_pixels}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    limit = tf.Variable(int(max_image_pixels), trainable=False, dtype=tf.int64, name="max_image_pixels")
    # No public ExportArchive API attaches a plain resource: `tf.saved_model.load(path).max_image_pixels`.
    archive._tf_trackable.max_image_pixels = limit

    def empty() -> dict[str, tf.Tensor]:
        return {"boxes": tf.zeros([0, max_detections, 4]), "scores": tf.zeros([0, max_detections]),
                "classes": tf.zeros([0, max_detections], tf.int64), "num_detections": tf.zeros([0], tf.int32)}

    def detect(images: tf.Tensor, heights: tf.Tensor, widths: tf.Tensor) -> dict[str, tf.Tensor]:
        # An empty request answers empty outputs (TF's conv kernels mishandle a batch of 0).
        return tf.cond(tf.shape(images)[0] > 0, lambda: run(images, heights, widths), empty)

    def run(images: tf.Tensor, heights: tf.Tensor, widths: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model.detect(tf.cast(images, tf.float32), max_detections=max_detections, nms_threshold=nms_threshold,
                           score_threshold=score_threshold, nms=nms)
        valid = tf.range(max_detections)[None, :] < out["num_detections"][:, None]
        boxes = tf.where(valid[..., None], to_pixel_boxes(out["boxes"], heights, widths), 0.0)
        return {"boxes": boxes, "scores": out["scores"], "classes": out["classes"],
                "num_detections": out["num_detections"]}

    def from_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(images)[0]
        return detect(images, tf.fill([batch], height), tf.fill([batch], width))

    def from_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def one(data):
            image = guarded_decode(data, 3, limit)
            size = tf.shape(image)[:2]
            return resize_for_model(image, (height, width), "stretch"), size

        images, sizes = tf.map_fn(
            one, image_bytes,
            fn_output_signature=(tf.TensorSpec((height, width, 3), tf.uint8), tf.TensorSpec((2,), tf.int32)))
        return detect(images, sizes[:, 0], sizes[:, 1])

    archive.add_endpoint(DEFAULT_SIGNATURE, from_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint(IMAGES_SIGNATURE, from_images,
                         input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")])
    return archive


def export_detector(model: keras.Model, path: str, image_size: tuple[int, int] = (256, 256),
                    max_detections: int = 100, nms_threshold: float = 0.5, score_threshold: float = 0.01,
                    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, nms: str = "kcv") -> str:
    """Write the detector SavedModel to `path` atomically (temporary folder + rename); returns `path`.

    Guarded: serving_default refuses, from the header and before decoding, images whose width x
    height exceeds `max_image_pixels` (recorded as `loaded.max_image_pixels`) or whose header is
    not PNG/JPEG/GIF/BMP; empty batches answer empty outputs.
    """
    return write_archive(build_detector_archive(model, image_size, max_detections, nms_threshold,
                                                score_threshold, max_image_pixels, nms), path)

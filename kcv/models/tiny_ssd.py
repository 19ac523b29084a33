"""TinySSD, the book's single-shot multibox detector (d2l-en chapter_computer-vision/ssd.md).

    model = kcv.models.tiny_ssd(num_classes=1)                 # 256x256x3 input, 5444 anchors
    model.compile(optimizer=CoupledSGD(0.2, l2=5e-4))          # the book: SGD lr 0.2, wd 5e-4
    model.fit(tf.data of (images, labels))                     # reports loss, class err, bbox mae
    out = model.detect(images)                                  # padded boxes/scores/classes
    out = model.predict(images)                                 # the same, batch by batch

Inputs: images float (B, H, W, 3) with values in [0, 255] (uint8 is cast); the model divides by
255 itself. Labels for training: (B, G, 5) float rows [class, x1, y1, x2, y2] with class
0..num_classes-1 and normalised xyxy corners; rows with class -1 are padding (an image may have
none at all).

`call(images)` returns the book's triple:
    anchors    (1, A, 4)            normalised xyxy, pixel-major per feature map, maps 0..4 in order
    cls_preds  (B, A, num_classes+1) logits, column 0 = background
    bbox_preds (B, 4A)              offsets, 4 per anchor in anchor order
For 256x256 inputs the five feature maps are 32, 16, 8, 4, 1 pixels wide, 4 anchors per pixel:
A = 4 * (1024 + 256 + 64 + 16 + 1) = 5444.

Order of predictions: a head's output (B, h, w, a*k) flattened in NHWC order has index
((y*w + x)*a + j)*k + c, i.e. pixel-major with the a anchors of a pixel inside, which is exactly
the order of `multibox_prior` (flat anchor index (y*w + x)*a + j). The book permutes NCHW to NHWC
before flattening for the same reason.

Loss (the book's `calc_loss`, `kcv.losses.detection_loss`): per image, softmax cross-entropy
averaged over the A anchors plus L1 between masked offsets averaged over the 4A entries; then the
mean over the batch. Metrics (the book's `cls_eval` / `bbox_eval` as train_step / test_step
report them, means over every anchor / entry of the epoch): `class err` = fraction of anchors
whose argmax class is wrong, `bbox mae` = mean of |(target - pred) * mask| over all 4A entries.

Measured on generated banana scenes (kcv.data.synthetic.bananas, 2 shared CPU cores, batch 32): the
book's plain SGD lr 0.2 learns slowly (mAP@0.5 on 100 held-out scenes: 0.06 after 96 steps at
256x256, 0.10 after 288 steps at 128x128; SGD momentum 0.9 lr 0.05: 0.39 after 480 steps at
128x128), while Adam lr 1e-3 at 128x128 on 1000 scenes reaches 0.84 after 320 steps and 0.88
after 512 steps (about 5 minutes). A 256x256 step costs about 4x a 128x128 step.

Deviations from the book, each small:
* The model scales [0, 255] input by 1/255 (the book feeds raw 0-255 floats; the batch norm right
  after the first convolution makes the two nearly equivalent).
* Targets come from `kcv.detection.multibox_target`, which skips padded rows (class -1) and
  gives images without objects all-background targets (the book's code does neither).
* Weights are initialised like PyTorch's defaults (kernel and bias uniform in +-1/sqrt(fan_in))
  and batch norm follows PyTorch (momentum 0.1, eps 1e-5, unbiased running variance) on TF's
  fused kernel (`kcv.layers.FusedBatchNorm`), so the book's lr 0.2 behaves the same.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from kcv.detection import BOOK_POS_THRESHOLD, detections_padded, multibox_detection, multibox_prior, multibox_target
from kcv.layers.fused_batch_norm import FusedBatchNorm
from kcv.losses.detection import detection_loss
from kcv.models.registry import register
from kcv.ops.boxes import bounding_boxes_to_rows
from kcv.ops.offsets import offset_inverse

BOOK_SIZES: tuple[tuple[float, float], ...] = ((0.2, 0.272), (0.37, 0.447), (0.54, 0.619), (0.71, 0.79), (0.88, 0.961))
BOOK_RATIOS: tuple[float, ...] = (1.0, 2.0, 0.5)
# (kind, output channels) of the five blocks; "base" is three down-sampling blocks 3->16->32->64.
BLOCKS: tuple[tuple[str, int], ...] = (("base", 64), ("down", 128), ("down", 128), ("down", 128), ("pool", 128))
BASE_FILTERS: tuple[int, ...] = (16, 32, 64)


def _torch_uniform(fan_in: int, seed: int | None) -> keras.initializers.Initializer:
    """PyTorch's default Conv2d init for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


class _Seeds:
    """Hands out distinct initializer seeds derived from one model seed (None stays None)."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.count = 0

    def next(self) -> int | None:
        self.count += 1
        return None if self.seed is None else self.seed * 1000 + self.count


def _conv(filters: int, in_channels: int, seeds: _Seeds, name: str) -> layers.Conv2D:
    fan_in = 9 * in_channels
    return layers.Conv2D(
        filters, 3, padding="same", name=name,
        kernel_initializer=_torch_uniform(fan_in, seeds.next()),
        bias_initializer=_torch_uniform(fan_in, seeds.next()),
    )


def _down_sample(x, in_channels: int, out_channels: int, seeds: _Seeds, name: str):
    """The book's down_sample_blk: 2 x (3x3 conv, BN, ReLU), then 2x2 max-pool (halves H and W)."""
    for k in (1, 2):
        x = _conv(out_channels, in_channels, seeds, f"{name}_conv{k}")(x)
        x = FusedBatchNorm(name=f"{name}_bn{k}")(x)
        x = layers.ReLU(name=f"{name}_relu{k}")(x)
        in_channels = out_channels
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def build_network(num_classes: int, input_shape: Sequence[int], num_anchors: int, seed: int | None = None
                  ) -> tuple[keras.Model, list[tuple[int, int]]]:
    """Functional body: images [0, 255] -> (cls_preds (B, A, C+1), bbox_preds (B, 4A)).

    Also returns the (h, w) of the five feature maps, which fix the anchors.
    """
    halvings = len(BASE_FILTERS) + sum(kind == "down" for kind, _ in BLOCKS)  # 6 max-pools of 2
    if len(input_shape) != 3 or min(int(d) for d in input_shape[:2]) < 2**halvings:
        raise ValueError(f"tiny_ssd: input {tuple(input_shape)} is too small for five feature maps; "
                         f"need (H, W, C) with H, W >= {2**halvings}")
    seeds = _Seeds(seed)
    images = keras.Input(tuple(input_shape), name="images")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(images)
    channels = int(input_shape[-1])
    cls_outputs, bbox_outputs, maps = [], [], []
    for i, (kind, out_channels) in enumerate(BLOCKS):
        if kind == "base":
            for j, filters in enumerate(BASE_FILTERS):
                x = _down_sample(x, channels, filters, seeds, f"blk0_down{j + 1}")
                channels = filters
        elif kind == "down":
            x = _down_sample(x, channels, out_channels, seeds, f"blk{i}_down")
        else:  # the book's AdaptiveMaxPool2d((1, 1))
            x = layers.GlobalMaxPooling2D(keepdims=True, name=f"blk{i}_pool")(x)
        channels = out_channels
        height, width = int(x.shape[1]), int(x.shape[2])
        maps.append((height, width))
        cls = _conv(num_anchors * (num_classes + 1), channels, seeds, f"cls_{i}")(x)
        bbox = _conv(num_anchors * 4, channels, seeds, f"bbox_{i}")(x)
        # NHWC flatten = pixel-major, anchors of a pixel inside: the anchor order (module doc).
        cls_outputs.append(layers.Reshape((height * width * num_anchors, num_classes + 1), name=f"cls_{i}_flat")(cls))
        bbox_outputs.append(layers.Reshape((height * width * num_anchors * 4,), name=f"bbox_{i}_flat")(bbox))
    cls_preds = layers.Concatenate(axis=1, name="cls_preds")(cls_outputs)
    bbox_preds = layers.Concatenate(axis=1, name="bbox_preds")(bbox_outputs)
    return keras.Model(images, [cls_preds, bbox_preds], name="tiny_ssd_network"), maps


def anchors_for_maps(maps: Sequence[tuple[int, int]], sizes: Sequence[Sequence[float]], ratios: Sequence[float]
                     ) -> np.ndarray:
    """(1, A, 4) float32: `multibox_prior` of every feature map, concatenated in map order."""
    per_map = [multibox_prior(tf.zeros([1, h, w, 1]), list(s), list(ratios)) for (h, w), s in zip(maps, sizes)]
    return tf.concat(per_map, axis=1).numpy()


def outputs_to_detections(anchors, cls_preds, bbox_preds, nms_threshold: float = 0.5,
                          pos_threshold: float = BOOK_POS_THRESHOLD) -> tf.Tensor:
    """Model outputs -> the book's `multibox_detection` rows (B, A, 6) [class|-1, conf, x1, y1, x2, y2].

    As the book's `predict`: softmax over classes, transposed to (B, C+1, A).
    """
    cls_probs = tf.transpose(tf.nn.softmax(tf.cast(cls_preds, tf.float32), axis=-1), [0, 2, 1])
    return multibox_detection(cls_probs, tf.cast(bbox_preds, tf.float32), anchors, nms_threshold, pos_threshold)


NMS_CHOICES: tuple[str, ...] = ("kcv", "keras_cv")


def outputs_to_padded(anchors, cls_preds, bbox_preds, max_detections: int = 100, nms_threshold: float = 0.5,
                      score_threshold: float = 0.01, nms: str = "kcv") -> dict[str, tf.Tensor]:
    """Model outputs -> fixed-size detections, with the book's NMS or keras-cv's.

    (1, A, 4) anchors, (B, A, C+1) logits, (B, 4A) offsets -> {"boxes": (B, D, 4) normalised
    xyxy, "scores": (B, D) float32 descending, "classes": (B, D) int64 0-based (-1 = padding),
    "num_detections": (B,) int32}; padding rows have box 0 and score 0. Works inside tf.function
    with an unknown batch size; a batch of 0 gives (0, D, ...) outputs.

    nms="kcv" (default, unchanged): the first rows of `outputs_to_detections` with class >= 0 and
      confidence >= score_threshold: the book's class-agnostic greedy NMS over each anchor's best
      class (`kcv.ops.decode.detections_padded`), bit-identical to the book's decoding.
    nms="keras_cv": the same decoded boxes (the book's offset_inverse on the anchors) and the same
      softmax probabilities without the background column through
      `keras_cv.layers.NonMaxSuppression("rel_xyxy", from_logits=False, iou_threshold=nms_threshold,
      confidence_threshold=score_threshold, max_detections=D)` (`_keras_cv_padded`).

    Where the two agree and where they differ. keras-cv's NonMaxSuppression is class-agnostic too
    (its score is the max over the classes and it returns the argmax class: one NMS per image,
    exactly the book's rule; per-class NMS is keras-cv's *MultiClass*NonMaxSuppression, not used),
    so for one class or several the kept boxes, scores and classes are the same, bit for bit,
    except at these edges (tf.image.non_max_suppression_padded, which it runs on TensorFlow):
      * score threshold: keras-cv keeps confidence > threshold, the book >= (a score exactly equal
        to score_threshold is a detection only with "kcv");
      * IoU threshold: keras-cv suppresses at IoU >= threshold with IoU = inter / (union + 1e-8)
        computed in its own order, the book at IoU > threshold (IoU == threshold is kept): pairs
        within about 1e-6 of the threshold can go either way;
      * ties: both take equal scores lower anchor index first (top_k / argsort); equal class
        probabilities give the first class in "kcv" (first_argmax) and tf.argmax's pick (first
        on CPU, not documented) in "keras_cv";
      * degenerate boxes: the book's zero-area rule (kcv.ops.nms) is not keras-cv's, and keras-cv
        drops a kept box whose four coordinates are all <= 0 (its validity test is any(box > 0)),
        while that box still suppresses others.
    tests/kcv/models/tiny_ssd_nms_test.py checks the equality on the book's cases and random ones.
    """
    cls_probs = tf.transpose(tf.nn.softmax(tf.cast(cls_preds, tf.float32), axis=-1), [0, 2, 1])
    if nms == "kcv":
        out = detections_padded(cls_probs, tf.cast(bbox_preds, tf.float32), anchors, nms_threshold,
                                score_threshold, max_detections)
        return {**out, "classes": tf.cast(out["classes"], tf.int64)}
    if nms == "keras_cv":
        return _keras_cv_padded(anchors, cls_probs, bbox_preds, max_detections, nms_threshold, score_threshold)
    raise ValueError(f"outputs_to_padded: nms must be one of {', '.join(NMS_CHOICES)}, got {nms!r}")


def _keras_cv_padded(anchors, cls_probs, bbox_preds, max_detections: int, nms_threshold: float,
                     score_threshold: float) -> dict[str, tf.Tensor]:
    """nms="keras_cv" of `outputs_to_padded`: (1, A, 4), (B, C+1, A) probabilities, (B, 4A) -> the padded dict."""
    import keras_cv

    from kcv.interop.keras_cv import from_keras_cv_predictions

    max_detections = int(max_detections)
    batch = tf.shape(cls_probs)[0]
    boxes = offset_inverse(tf.reshape(tf.cast(anchors, tf.float32), [1, -1, 4]),
                           tf.reshape(tf.cast(bbox_preds, tf.float32), [batch, -1, 4]))  # (B, A, 4)
    probs = tf.transpose(cls_probs[:, 1:, :], [0, 2, 1])  # (B, A, C), background dropped
    layer = keras_cv.layers.NonMaxSuppression(bounding_box_format="rel_xyxy", from_logits=False,
                                              iou_threshold=nms_threshold, confidence_threshold=score_threshold,
                                              max_detections=max_detections)

    def run() -> dict[str, tf.Tensor]:
        return from_keras_cv_predictions(layer(boxes, probs))

    def empty() -> dict[str, tf.Tensor]:  # TF's padded NMS reads box [0, 0] and fails on 0 images
        return {"boxes": tf.zeros([0, max_detections, 4]), "scores": tf.zeros([0, max_detections]),
                "classes": tf.zeros([0, max_detections], tf.int64), "num_detections": tf.zeros([0], tf.int32)}

    static = cls_probs.shape[0]
    if static is not None:
        return run() if static > 0 else empty()
    return tf.cond(batch > 0, run, empty)


@keras.saving.register_keras_serializable(package="kcv")
class TinySSD(keras.Model):
    """The book's TinySSD with its training step. See the module docstring for shapes and the loss.

    Args:
        num_classes: object classes (background excluded); the book's bananas: 1.
        input_shape: (H, W, 3) of the images; the anchors depend on it. Book: (256, 256, 3).
        sizes: five [s1, s2] anchor-size lists, one per feature map. ratios: shared aspect ratios.
        seed: initializer seed (None: random).
    """

    bounding_box_format = "rel_xyxy"  # keras-cv's name for the boxes its training labels carry

    def __init__(self, num_classes: int = 1, input_shape: Sequence[int] = (256, 256, 3),
                 sizes: Sequence[Sequence[float]] = BOOK_SIZES, ratios: Sequence[float] = BOOK_RATIOS,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"TinySSD: num_classes must be >= 1, got {num_classes}")
        if len(sizes) != len(BLOCKS):
            raise ValueError(f"TinySSD: need {len(BLOCKS)} size lists (one per feature map), got {len(sizes)}")
        counts = {len(s) for s in sizes}
        if len(counts) != 1 or not ratios:
            raise ValueError("TinySSD: every feature map needs the same number of sizes, and ratios must be non-empty")
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(d) for d in input_shape)
        self.sizes = [[float(v) for v in s] for s in sizes]
        self.ratios = [float(r) for r in ratios]
        self.seed = seed
        self.num_anchors_per_pixel = counts.pop() + len(self.ratios) - 1
        self.network, self.feature_maps = build_network(self.num_classes, self.image_shape,
                                                        self.num_anchors_per_pixel, seed)
        self._anchors = anchors_for_maps(self.feature_maps, self.sizes, self.ratios)  # (1, A, 4)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.class_err = keras.metrics.Mean(name="class err")
        self.bbox_mae = keras.metrics.Mean(name="bbox mae")
        self.built = True

    @property
    def num_anchors(self) -> int:
        return int(self._anchors.shape[1])

    @property
    def anchors(self) -> tf.Tensor:
        """(1, A, 4) normalised xyxy anchors, a constant."""
        return tf.constant(self._anchors)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.class_err, self.bbox_mae]

    def call(self, images: Any, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(B, H, W, 3) [0, 255] -> (anchors (1, A, 4), cls_preds (B, A, C+1) logits, bbox_preds (B, 4A))."""
        images = tf.cast(images, self.compute_dtype)
        cls_preds, bbox_preds = self.network(images, training=training)
        # Float32 outputs, so losses and decoding stay exact under mixed precision.
        return self.anchors, tf.cast(cls_preds, tf.float32), tf.cast(bbox_preds, tf.float32)

    # ---- training -------------------------------------------------------------------------
    def _forward_loss(self, images, labels, training: bool):
        anchors, cls_preds, bbox_preds = self(images, training=training)
        if isinstance(labels, dict):  # keras-cv's {"boxes", "classes"} in rel_xyxy (kcv's detection input)
            labels = bounding_boxes_to_rows(labels)
        labels = tf.cast(labels, tf.float32)
        bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, labels)
        per_image = detection_loss(cls_preds, bbox_preds, cls_labels, bbox_labels, bbox_masks)
        return per_image, (cls_preds, bbox_preds, cls_labels, bbox_labels, bbox_masks)

    def _update_metrics(self, per_image, cls_preds, bbox_preds, cls_labels, bbox_labels, bbox_masks):
        wrong = tf.cast(tf.not_equal(tf.argmax(cls_preds, axis=-1), cls_labels), tf.float32)  # (B, A)
        self.class_err.update_state(wrong)
        self.bbox_mae.update_state(tf.abs((bbox_labels - bbox_preds) * bbox_masks))  # (B, 4A)
        self.loss_tracker.update_state(per_image)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One SGD step on (images (B, H, W, 3) [0, 255], labels); sample weights are ignored.

        labels: the book's rows (B, G, 5), or keras-cv's bounding-box dict {"boxes" (B, G, 4)
        rel_xyxy, "classes" (B, G)} with -1 padding (what kcv.data.input.detection_dataset gives).
        """
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise ValueError("TinySSD.train_step needs (images, labels) batches")
        # The optimizer sums replica gradients, so each replica's mean is divided by the replica
        # count to give the gradient of the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            per_image, extras = self._forward_loss(images, labels, training=True)
            loss = tf.reduce_mean(per_image)
            if self.losses:
                loss = loss + tf.add_n([tf.cast(x, tf.float32) for x in self.losses])
            scaled = self.optimizer.scale_loss(loss / replicas)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update_metrics(per_image, *extras)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        per_image, extras = self._forward_loss(images, labels, training=False)
        return self._update_metrics(per_image, *extras)

    # ---- inference ------------------------------------------------------------------------
    def predict_detections(self, images: Any, nms_threshold: float = 0.5,
                           pos_threshold: float = BOOK_POS_THRESHOLD) -> tf.Tensor:
        """The book's `predict`: (B, A, 6) `multibox_detection` rows for images [0, 255].

        Rows [class or -1, confidence, x1, y1, x2, y2] (normalised); detections come first.
        """
        return outputs_to_detections(*self(images, training=False), nms_threshold, pos_threshold)

    def detect(self, images: Any, max_detections: int = 100, nms_threshold: float = 0.5,
               score_threshold: float = 0.01, nms: str = "kcv") -> dict[str, tf.Tensor]:
        """Padded detections for images [0, 255]; see `outputs_to_padded` (boxes normalised xyxy;
        nms: "kcv" the book's NMS, "keras_cv" keras_cv.layers.NonMaxSuppression)."""
        return outputs_to_padded(*self(images, training=False), max_detections, nms_threshold, score_threshold,
                                 nms=nms)

    def predict_step(self, data: Any) -> dict[str, tf.Tensor]:
        """`model.predict(images)` gives `detect(images)` with its defaults, like the book's `predict`
        (raw outputs: call the model)."""
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.detect(images)

    # ---- serialisation ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "input_shape": list(self.image_shape),
            "sizes": self.sizes,
            "ratios": self.ratios,
            "seed": self.seed,
        }


@register("tiny_ssd")
def tiny_ssd(num_classes: int = 1, input_shape: Sequence[int] = (256, 256, 3), seed: int | None = None,
             sizes: Sequence[Sequence[float]] = BOOK_SIZES, ratios: Sequence[float] = BOOK_RATIOS) -> TinySSD:
    """The book's TinySSD (uncompiled). Compile with only an optimizer: `model.compile(optimizer=...)`."""
    return TinySSD(num_classes=num_classes, input_shape=input_shape, sizes=sizes, ratios=ratios, seed=seed,
                   name="tiny_ssd")

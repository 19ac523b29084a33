"""RetinaNet (Lin et al. 2017, "Focal Loss for Dense Object Detection") on keras-cv, sized for CPUs.

    model = kcv.models.retinanet(num_classes=1, seed=0)        # 128x128x3, ResNet-18, 3069 anchors
    model.compile(optimizer=keras.optimizers.Adam(1e-3))        # focal + smooth L1 by default
    model.train_step((images, {"boxes": boxes, "classes": classes}))
    out = model.detect(images)                                  # padded, like TinySSD.detect

The model is a `keras_cv.models.RetinaNet` (isinstance holds) trained by keras-cv's own
`compute_loss` (its `RetinaNetLabelEncoder`: IoU >= 0.5 positive, < 0.4 background, in between
ignored; focal loss on the classes, smooth L1 on the box deltas, both normalised by the number of
positive anchors). What kcv adds around it:

* Inputs: images float (B, H, W, 3) in [0, 255] (the backbone rescales by 1/255). Training labels:
  `{"boxes": (B, G, 4) xyxy in pixels of the model's input, "classes": (B, G) float}`, rows with
  class -1 are padding (their boxes are zeroed before matching, so whatever they hold is ignored).
  `bounding_box_format` is "xyxy" (pixels); keras-cv's relative formats are not used.
* Backbone: `keras_cv.models.ResNetBackbone` from explicit arguments (depth 18, 34 or 50; ResNet-18
  is `stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[2, 2, 2, 2], block_type="basic_block"`);
  presets are never touched (they contact a model hub) and nothing is downloaded.
* Pyramid and heads: keras-cv's `FeaturePyramid` and `PredictionHead` hardcode 256 channels and 3
  convs; here `RetinaNetFeaturePyramid` (the same P3-P7 structure and call contract, `pyramid_width`
  channels) and `RetinaNetHead` (`head_convs` 3x3 convs of `head_width` channels with ReLU, then the
  prediction conv; the class head's bias starts at the focal-loss prior -log((1 - 0.01) / 0.01)).
  Both heads are shared across the five levels, as in the paper and keras-cv.
* Anchors: `keras_cv.layers.AnchorGenerator` in pixels, strides 8..128 (P3..P7), one size per level
  (`anchor_sizes`, pixels of the model's input, not rescaled with `input_shape`), scales
  2**(0, 1/3, 2/3), aspect ratios (0.5, 1, 2): 9 per position. The defaults (16..256 px) fit 128-px
  banana scenes (box sides about 10-55 px); keras-cv's default 32..512 fits 512-640 px images.
* Batch norm: the backbone's moving averages use momentum 0.9 (`bn_momentum`; PyTorch's default,
  as TinySSD), not keras-cv's 0.99: with 0.99 the inference-mode statistics stay far from the
  batch statistics for hundreds of steps (measured: 25 Adam steps on one batch of 16 bananas give
  mAP@0.5 0.93 with batch statistics and 0.01 in inference mode; on 480 one-banana scenes at
  128 px, batch 16, Adam 1e-3 with clipnorm 10, held-out mAP@0.5 after 60 / 120 / 180 steps was
  0.001 / 0.001 / 0.001 at 0.99 and 0.28 / 0.56 / 0.70 at 0.9).
* Determinism: with `seed`, every initializer is seeded (heads and pyramid at construction, the
  backbone's conv kernels are re-drawn after it is built from seeded copies of their own
  initializers), so two builds with one seed are identical without `keras.utils.set_random_seed`.
* Precision: the anchor generator, label encoder and NMS run in float32 and the two outputs are cast
  to float32, so a `mixed_bfloat16` policy only changes the network's compute.
* Distribution: keras-cv's losses use reduction "sum" (normalised by each replica's positive
  anchors), which Keras does not divide by the replica count; `compile` wraps them in
  `ReplicaMeanLoss`, so summed replica gradients are those of the replicas' mean loss (as TinySSD's
  train_step) and the logged `loss`, `box_loss`, `classification_loss` are replica means.
  As for every compiled model here, the optimizer's and metrics' variables must exist before the
  first distributed step (`pipelines.loop.build_state`, i.e. `model._symbolic_build`).

`call(images)` returns keras-cv's raw dict: `box` (B, A, 4) deltas (center_yxhw encoding, variance
0.1, 0.1, 0.2, 0.2) and `classification` (B, A, num_classes) logits; `detect` decodes them;
`predict_step` returns `detect(images)` (as TinySSD's does, not keras-cv's `decode_predictions`).

keras-cv is imported lazily: `import kcv` and the registry must not import it (tests check), so the
model class is made on first use by `model_class()`. Loading a `.keras` file works after a plain
`import kcv`: a placeholder registered under "kcv>KcvRetinaNet" makes the class on demand.
"""
from __future__ import annotations

import functools
import math
import os
import zlib
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from kcv.models.registry import register
from kcv.ops.nms import nms as _kcv_nms

# depth -> (blocks per stage, keras-cv block type); filters are always 64, 128, 256, 512.
DEPTHS: dict[int, tuple[tuple[int, ...], str]] = {
    18: ((2, 2, 2, 2), "basic_block"),
    34: ((3, 4, 6, 3), "basic_block"),
    50: ((3, 4, 6, 3), "block"),
}
STAGE_FILTERS: tuple[int, ...] = (64, 128, 256, 512)
STAGE_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
STRIDES: tuple[int, ...] = (8, 16, 32, 64, 128)  # P3..P7
SCALES: tuple[float, ...] = (1.0, 2.0 ** (1.0 / 3.0), 2.0 ** (2.0 / 3.0))
ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
DEFAULT_ANCHOR_SIZES: tuple[float, ...] = (16.0, 32.0, 64.0, 128.0, 256.0)
BOX_VARIANCE: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)  # keras-cv's RetinaNet BOX_VARIANCE
PRIOR_PROBABILITY = 0.01
DEFAULT_BN_MOMENTUM = 0.9  # PyTorch's 0.1 in Keras's convention (keras-cv: 0.99); see the module docstring
NMS_CHOICES: tuple[str, ...] = ("keras_cv", "kcv")
BOUNDING_BOX_FORMAT = "xyxy"
_REGISTERED_NAME = "kcv>KcvRetinaNet"


def derive_seed(seed: int | None, tag: str) -> int | None:
    """A distinct, process-independent initializer seed for `tag` (None stays None)."""
    if seed is None:
        return None
    return zlib.crc32(f"{int(seed)}/{tag}".encode()) & 0x7FFFFFFF


def _with_seed(initializer: Any, seed: int | None) -> keras.initializers.Initializer:
    """A copy of `initializer` (an instance or a name) with `seed` where it takes one."""
    initializer = keras.initializers.get(initializer)
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(initializer).from_config(config)


def _prior_bias(prior: float) -> float:
    return -math.log((1.0 - prior) / prior)


# ---- layers (plain Keras: registered on import, no keras-cv) ----------------------------------
@keras.saving.register_keras_serializable(package="kcv")
class RetinaNetHead(keras.layers.Layer):
    """RetinaNet's class or box subnet: `num_convs` x (3x3 conv `width`, ReLU), then a 3x3 conv to
    `output_filters` (anchors per position x outputs per anchor).

    Kernels are orthogonal (keras-cv's PredictionHead), biases 0; with `prior_probability` the last
    bias starts at -log((1 - p) / p), so every anchor's initial sigmoid is p (the paper's focal-loss
    initialisation). Applied to every pyramid level with shared weights.
    """

    def __init__(self, output_filters: int, width: int = 64, num_convs: int = 2,
                 prior_probability: float | None = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if output_filters < 1 or width < 1 or num_convs < 0:
            raise ValueError(f"RetinaNetHead: need output_filters >= 1, width >= 1, num_convs >= 0; got "
                             f"{output_filters}, {width}, {num_convs}")
        if prior_probability is not None and not 0.0 < prior_probability < 1.0:
            raise ValueError(f"RetinaNetHead: prior_probability must be in (0, 1), got {prior_probability}")
        self.output_filters = int(output_filters)
        self.width = int(width)
        self.num_convs = int(num_convs)
        self.prior_probability = None if prior_probability is None else float(prior_probability)
        self.seed = seed
        self.conv_layers = [
            keras.layers.Conv2D(self.width, 3, padding="same", activation="relu", name=f"conv{i}",
                                kernel_initializer=keras.initializers.Orthogonal(seed=derive_seed(seed, f"conv{i}")),
                                bias_initializer="zeros", dtype=self.dtype_policy)
            for i in range(self.num_convs)
        ]
        bias = "zeros" if self.prior_probability is None else keras.initializers.Constant(
            _prior_bias(self.prior_probability))
        self.prediction_layer = keras.layers.Conv2D(
            self.output_filters, 3, padding="same", name="prediction",
            kernel_initializer=keras.initializers.Orthogonal(seed=derive_seed(seed, "prediction")),
            bias_initializer=bias, dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        for layer in self.conv_layers:
            layer.build(shape)
            shape = shape[:-1] + (self.width,)
        self.prediction_layer.build(shape)
        self.built = True

    def call(self, x, training: bool = False):
        for layer in self.conv_layers:
            x = layer(x)
        return self.prediction_layer(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_filters,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_filters": self.output_filters, "width": self.width,
                "num_convs": self.num_convs, "prior_probability": self.prior_probability, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kcv")
class RetinaNetFeaturePyramid(keras.layers.Layer):
    """keras-cv's FeaturePyramid with `width` channels instead of 256 (same call contract).

    {"P3", "P4", "P5"} (or a 3-sequence) backbone maps -> (P3, P4, P5, P6, P7): 1x1 laterals, a
    nearest-neighbour top-down path, 3x3 smoothing; P6 = 3x3/2 conv of C5, P7 = 3x3/2 conv of
    relu(P6). The upsampled map is cropped to the lateral's size, so inputs whose side is not a
    multiple of 32 work too ("same" padding rounds sizes up). Kernels glorot-uniform, biases 0.
    """

    LEVELS = ("P3", "P4", "P5")

    def __init__(self, width: int = 64, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if width < 1:
            raise ValueError(f"RetinaNetFeaturePyramid: width must be >= 1, got {width}")
        self.width = int(width)
        self.seed = seed

        def conv(name: str, kernel: int, stride: int = 1) -> keras.layers.Conv2D:
            return keras.layers.Conv2D(self.width, kernel, stride, padding="same", name=name,
                                       kernel_initializer=keras.initializers.GlorotUniform(
                                           seed=derive_seed(seed, name)),
                                       dtype=self.dtype_policy)

        self.lateral = [conv(f"lateral_c{i}", 1) for i in (3, 4, 5)]
        self.smooth = [conv(f"smooth_p{i}", 3) for i in (3, 4, 5)]
        self.conv_p6 = conv("conv_p6", 3, 2)
        self.conv_p7 = conv("conv_p7", 3, 2)

    def _unpack(self, inputs):
        if isinstance(inputs, dict):
            return [inputs[k] for k in self.LEVELS]
        return list(inputs)

    def build(self, input_shape) -> None:
        shapes = self._unpack(input_shape)
        inner = (None, None, None, self.width)
        for layer, shape in zip(self.lateral, shapes):
            layer.build((None, None, None, shape[-1]))
        for layer in self.smooth:
            layer.build(inner)
        self.conv_p6.build((None, None, None, shapes[2][-1]))
        self.conv_p7.build(inner)
        self.built = True

    @staticmethod
    def _top_down(coarse, fine):
        up = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)
        return fine + up[:, :tf.shape(fine)[1], :tf.shape(fine)[2], :]

    def call(self, inputs, training: bool = False):
        c3, c4, c5 = self._unpack(inputs)
        p5 = self.lateral[2](c5)
        p4 = self._top_down(p5, self.lateral[1](c4))
        p3 = self._top_down(p4, self.lateral[0](c3))
        p6 = self.conv_p6(c5)
        p7 = self.conv_p7(tf.nn.relu(p6))
        return self.smooth[0](p3), self.smooth[1](p4), self.smooth[2](p5), p6, p7

    def compute_output_shape(self, input_shape):
        shapes = self._unpack(input_shape)

        def half(n):
            return None if n is None else (int(n) + 1) // 2

        h5, w5 = shapes[2][1], shapes[2][2]
        h6, w6 = half(h5), half(w5)
        out = [tuple(s[:-1]) + (self.width,) for s in shapes]
        out.append((shapes[2][0], h6, w6, self.width))
        out.append((shapes[2][0], half(h6), half(w6), self.width))
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kcv")
class ReplicaMeanLoss(keras.losses.Loss):
    """A reduction="sum" loss divided by the number of replicas in sync.

    Keras divides a loss by the replica count only for mean reductions; keras-cv's RetinaNet losses
    are sums normalised by each replica's positive anchors, so without this the summed replica
    gradients (and Keras's per-loss logs, which multiply back by the replica count) would be N
    times those of the replicas' mean. A no-op on one replica.
    """

    def __init__(self, loss: Any, name: str | None = None) -> None:
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        super().__init__(name=name or getattr(loss, "name", None), reduction="sum")
        self.loss = loss
        for attr in ("from_logits", "bounding_box_format"):  # what keras-cv's compile checks
            if hasattr(loss, attr):
                setattr(self, attr, getattr(loss, attr))

    def __call__(self, y_true, y_pred, sample_weight=None):
        value = self.loss(y_true, y_pred, sample_weight)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return value / replicas if replicas > 1 else value

    def call(self, y_true, y_pred):  # not used: __call__ delegates, reduction and weights included
        return self.loss.call(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"loss": keras.saving.serialize_keras_object(self.loss), "name": self.name}


def _replica_mean(loss: Any) -> Any:
    return ReplicaMeanLoss(loss) if isinstance(loss, keras.losses.Loss) and loss.reduction == "sum" \
        and not isinstance(loss, ReplicaMeanLoss) else loss


# ---- the model class (made lazily: it subclasses keras-cv) ------------------------------------
def _reseed_backbone(backbone: keras.Model, seed: int | None) -> None:
    """Re-draw every randomly initialised kernel/bias of `backbone` from a seeded copy of its own
    initializer (keras-cv builds its layers with unseeded defaults). Batch-norm variables start at
    constants and are left alone."""
    if seed is None:
        return
    for layer in backbone.layers:
        for attr in ("kernel", "bias"):
            variable = getattr(layer, attr, None)
            initializer = getattr(layer, f"{attr}_initializer", None)
            if isinstance(variable, keras.Variable) and initializer is not None:
                init = _with_seed(initializer, derive_seed(seed, f"backbone/{layer.name}/{attr}"))
                variable.assign(init(tuple(variable.shape), dtype=variable.dtype))


def _check_options(num_classes: int, input_shape: Sequence[int], depth: int, head_width: int, head_convs: int,
                   pyramid_width: int, anchor_sizes: Sequence[float]) -> None:
    if int(num_classes) < 1:
        raise ValueError(f"retinanet: num_classes must be >= 1, got {num_classes}")
    if len(input_shape) != 3 or int(input_shape[-1]) != 3 or min(int(d) for d in input_shape[:2]) < 32:
        raise ValueError(f"retinanet: input_shape must be (H, W, 3) with H, W >= 32, got {tuple(input_shape)}")
    if int(depth) not in DEPTHS:
        raise ValueError(f"retinanet: depth must be one of {sorted(DEPTHS)}, got {depth}")
    if int(head_width) < 1 or int(head_convs) < 0 or int(pyramid_width) < 1:
        raise ValueError(f"retinanet: need head_width >= 1, head_convs >= 0, pyramid_width >= 1; got "
                         f"{head_width}, {head_convs}, {pyramid_width}")
    if len(anchor_sizes) != len(STRIDES) or min(float(s) for s in anchor_sizes) <= 0:
        raise ValueError(f"retinanet: anchor_sizes needs {len(STRIDES)} positive sizes (P3..P7), "
                         f"got {tuple(anchor_sizes)}")


@functools.cache
def model_class() -> type:
    """The `KcvRetinaNet` class (a `keras_cv.models.RetinaNet` subclass); imports keras-cv."""
    import keras_cv
    from keras_cv.src.bounding_box.converters import _decode_deltas_to_boxes
    from keras_cv.src.models.object_detection.retinanet.retinanet import (_parse_box_loss,
                                                                         _parse_classification_loss)

    # Replace the on-demand placeholder by the real class.
    custom = keras.saving.get_custom_objects()
    if custom.get(_REGISTERED_NAME) is _LazyKcvRetinaNet:
        del custom[_REGISTERED_NAME]

    @keras.saving.register_keras_serializable(package="kcv")
    class KcvRetinaNet(keras_cv.models.RetinaNet):
        """keras-cv's RetinaNet with kcv's small pyramid and heads, pixel xyxy boxes, `detect`.

        Args: see `retinanet` (the builder); the config is these arguments, so
        `KcvRetinaNet.from_config(model.get_config())` rebuilds the same architecture (and, with a
        seed, the same initial weights).
        """

        def __init__(self, num_classes: int = 1, input_shape: Sequence[int] = (128, 128, 3), depth: int = 18,
                     head_width: int = 64, head_convs: int = 2, pyramid_width: int | None = None,
                     anchor_sizes: Sequence[float] = DEFAULT_ANCHOR_SIZES, seed: int | None = None,
                     bn_momentum: float = DEFAULT_BN_MOMENTUM, **kwargs: Any) -> None:
            pyramid_width = int(head_width if pyramid_width is None else pyramid_width)
            _check_options(num_classes, input_shape, depth, head_width, head_convs, pyramid_width, anchor_sizes)
            if not 0.0 <= float(bn_momentum) < 1.0:
                raise ValueError(f"retinanet: bn_momentum must be in [0, 1), got {bn_momentum}")
            image_shape = tuple(int(d) for d in input_shape)
            blocks, block_type = DEPTHS[int(depth)]
            backbone = keras_cv.models.ResNetBackbone(
                stackwise_filters=list(STAGE_FILTERS), stackwise_blocks=list(blocks),
                stackwise_strides=list(STAGE_STRIDES), include_rescaling=True, input_shape=image_shape,
                block_type=block_type)
            _reseed_backbone(backbone, seed)
            for layer in backbone.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = float(bn_momentum)
            anchor_generator = keras_cv.layers.AnchorGenerator(
                bounding_box_format=BOUNDING_BOX_FORMAT, sizes=[float(s) for s in anchor_sizes],
                scales=list(SCALES), aspect_ratios=list(ASPECT_RATIOS), strides=list(STRIDES), clip_boxes=True,
                dtype="float32")
            label_encoder = keras_cv.models.retinanet.LabelEncoder(
                bounding_box_format=BOUNDING_BOX_FORMAT, anchor_generator=anchor_generator,
                box_variance=list(BOX_VARIANCE), dtype="float32")
            per_position = len(SCALES) * len(ASPECT_RATIOS)
            super().__init__(
                backbone=backbone,
                num_classes=int(num_classes),
                bounding_box_format=BOUNDING_BOX_FORMAT,
                label_encoder=label_encoder,
                prediction_decoder=_nms_layer(keras_cv, 100, 0.5, 0.01),
                feature_pyramid=RetinaNetFeaturePyramid(pyramid_width, seed=derive_seed(seed, "pyramid"),
                                                        name="feature_pyramid"),
                classification_head=RetinaNetHead(per_position * int(num_classes), head_width, head_convs,
                                                  PRIOR_PROBABILITY, seed=derive_seed(seed, "class_head"),
                                                  name="classification_head"),
                box_head=RetinaNetHead(per_position * 4, head_width, head_convs, None,
                                       seed=derive_seed(seed, "box_head"), name="box_head"),
                **kwargs,
            )
            self.image_shape = image_shape
            self.depth = int(depth)
            self.head_width = int(head_width)
            self.head_convs = int(head_convs)
            self.pyramid_width = pyramid_width
            self.anchor_sizes = [float(s) for s in anchor_sizes]
            self.seed = seed
            self.bn_momentum = float(bn_momentum)
            anchors = anchor_generator(image_shape=image_shape)
            self._anchors = np.concatenate([np.asarray(a) for a in anchors.values()], axis=0).astype("float32")
            predicted = int(self.outputs[0].shape[1])
            if predicted != self._anchors.shape[0]:  # guards the stride / feature-map bookkeeping
                raise ValueError(f"retinanet: {predicted} box predictions but {self._anchors.shape[0]} anchors "
                                 f"for input {image_shape}")

        # ---- shapes ---------------------------------------------------------------------
        @property
        def num_anchors(self) -> int:
            return int(self._anchors.shape[0])

        @property
        def anchors(self) -> tf.Tensor:
            """(A, 4) xyxy pixel anchors, level-major (P3..P7), a constant."""
            return tf.constant(self._anchors)

        def call(self, inputs, training=None, mask=None, **kwargs):
            """(B, H, W, 3) [0, 255] (or {"images": ...}) -> {"box": (B, A, 4), "classification": (B, A, C)},
            float32 whatever the dtype policy."""
            images = inputs["images"] if isinstance(inputs, dict) else inputs
            inputs = {"images": tf.cast(images, tf.float32)}
            outputs = super().call(inputs, training=training, mask=mask, **kwargs)
            return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}

        # ---- training -------------------------------------------------------------------
        def compile(self, optimizer: Any = "rmsprop", box_loss: Any = "smoothl1", classification_loss: Any = "focal",
                    **kwargs: Any) -> None:
            """keras-cv's compile with its losses as defaults: `model.compile(optimizer=opt)` works.

            Losses with reduction "sum" (keras-cv's "focal" and "smoothl1") are wrapped in
            `ReplicaMeanLoss` (see there); anything else is passed on unchanged.
            """
            box_loss = _replica_mean(_parse_box_loss(box_loss))
            classification_loss = _replica_mean(_parse_classification_loss(classification_loss))
            super().compile(box_loss=box_loss, classification_loss=classification_loss, optimizer=optimizer,
                            **kwargs)

        def compute_loss(self, x, y, y_pred, sample_weight=None, **kwargs):
            """keras-cv's loss, after zeroing the boxes of padding rows (class < 0)."""
            y = dict(y)
            classes = tf.cast(y["classes"], tf.float32)
            boxes = tf.cast(y["boxes"], tf.float32)
            # A padding row must not take part in anchor matching: a zero box has IoU 0 with every anchor.
            boxes = tf.where(classes[..., None] < 0.0, 0.0, boxes)
            return super().compute_loss(x, {"boxes": boxes, "classes": classes}, y_pred, sample_weight, **kwargs)

        # ---- inference ------------------------------------------------------------------
        def decode_boxes(self, box_deltas) -> tf.Tensor:
            """(B, A, 4) predicted deltas -> (B, A, 4) xyxy pixel boxes (keras-cv's decoding)."""
            return _decode_deltas_to_boxes(
                anchors=self.anchors, boxes_delta=tf.cast(box_deltas, tf.float32),
                anchor_format=BOUNDING_BOX_FORMAT, box_format=BOUNDING_BOX_FORMAT,
                variance=list(BOX_VARIANCE), image_shape=self.image_shape)

        def detect(self, images: Any, max_detections: int = 100, nms_threshold: float = 0.5,
                   score_threshold: float = 0.01, nms: str = "keras_cv") -> dict[str, tf.Tensor]:
            """Padded detections for images [0, 255] (B, H, W, 3) at the model's size.

            {"boxes": (B, D, 4) float32 normalised xyxy (pixels / (W, H)), "scores": (B, D) float32
            descending, "classes": (B, D) int64 (0-based), "num_detections": (B,) int32}; padding
            rows: box 0, score 0, class -1 (TinySSD.detect's conventions). Boxes are not clipped.
            A detection's score is the max sigmoid over classes and its class the argmax.

            nms="keras_cv": `keras_cv.layers.NonMaxSuppression` (class-agnostic over the max class
            score, boxes with score > score_threshold), as `decode_predictions` applies it.
            nms="kcv": the book's greedy NMS (`kcv.ops.nms.nms`), class-agnostic too, keeping
            score >= score_threshold. The two agree except for scores equal to the threshold and
            ties. Traces under tf.function with an unknown batch size; a batch of 0 is the caller's.
            """
            if nms not in NMS_CHOICES:
                raise ValueError(f"detect: nms must be one of {', '.join(NMS_CHOICES)}; got {nms!r}")
            max_detections = int(max_detections)
            if max_detections < 1:
                raise ValueError(f"detect: max_detections must be >= 1, got {max_detections}")
            raw = self(images, training=False)
            boxes = self.decode_boxes(raw["box"])
            logits = tf.cast(raw["classification"], tf.float32)
            if nms == "keras_cv":
                decoder = _nms_layer(keras_cv, max_detections, nms_threshold, score_threshold)
                out = decoder(boxes, logits, image_shape=self.image_shape)
                kept_boxes, scores, classes = out["boxes"], out["confidence"], out["classes"]
                count = tf.cast(out["num_detections"], tf.int32)
            else:
                kept_boxes, scores, classes, count = _greedy_detections(
                    boxes, logits, max_detections, nms_threshold, score_threshold)
            height, width = float(self.image_shape[0]), float(self.image_shape[1])
            valid = tf.range(max_detections)[None, :] < count[:, None]
            scale = tf.constant([width, height, width, height], tf.float32)
            return {
                "boxes": tf.where(valid[..., None], tf.cast(kept_boxes, tf.float32) / scale, 0.0),
                "scores": tf.where(valid, tf.cast(scores, tf.float32), 0.0),
                "classes": tf.where(valid, tf.cast(classes, tf.int64), tf.constant(-1, tf.int64)),
                "num_detections": count,
            }

        def predict_step(self, *args):
            """`model.predict(images)` gives `detect(images)` with its defaults (as TinySSD)."""
            x, _, _ = keras.utils.unpack_x_y_sample_weight(args[-1])
            if isinstance(x, dict):  # keras-cv's {"images": ..., "bounding_boxes": ...}
                x = x["images"]
            return self.detect(x)

        # ---- serialisation --------------------------------------------------------------
        def get_config(self) -> dict[str, Any]:
            return {
                "name": self.name,
                "trainable": self.trainable,
                "num_classes": self.num_classes,
                "input_shape": list(self.image_shape),
                "depth": self.depth,
                "head_width": self.head_width,
                "head_convs": self.head_convs,
                "pyramid_width": self.pyramid_width,
                "anchor_sizes": list(self.anchor_sizes),
                "seed": self.seed,
                "bn_momentum": self.bn_momentum,
            }

        @classmethod
        def from_config(cls, config: dict[str, Any]):
            return cls(**config)

    KcvRetinaNet.__module__ = __name__
    KcvRetinaNet.__qualname__ = "KcvRetinaNet"
    globals()["KcvRetinaNet"] = KcvRetinaNet
    return KcvRetinaNet


def _nms_layer(keras_cv, max_detections: int, iou_threshold: float, confidence_threshold: float):
    return keras_cv.layers.NonMaxSuppression(
        bounding_box_format=BOUNDING_BOX_FORMAT, from_logits=True, iou_threshold=float(iou_threshold),
        confidence_threshold=float(confidence_threshold), max_detections=int(max_detections), dtype="float32")


def _greedy_detections(boxes, logits, max_detections: int, iou_threshold: float, score_threshold: float):
    """Class-agnostic greedy NMS per image on max-sigmoid scores (kcv.ops.nms, the book's rules).

    (B, A, 4) pixel boxes, (B, A, C) logits -> kept boxes (B, D, 4), scores (B, D), classes (B, D)
    int64, counts (B,) int32; rows past the count are padding (zeros / -1). Greedy decisions depend
    only on higher-scoring boxes, so keeping score >= threshold after NMS equals filtering first.
    """
    probs = tf.sigmoid(tf.cast(logits, tf.float32))
    conf = tf.reduce_max(probs, axis=-1)
    cls = tf.argmax(probs, axis=-1, output_type=tf.int64)
    threshold = tf.constant(score_threshold, tf.float32)

    def one(args):
        b, c, k = args
        keep = _kcv_nms(b, c, iou_threshold, max_output_size=max_detections)
        count = tf.reduce_sum(tf.cast(tf.gather(c, keep) >= threshold, tf.int32))  # a prefix: scores descend
        keep = keep[:count]
        pad = [[0, max_detections - count]]
        return (tf.pad(tf.gather(b, keep), pad + [[0, 0]]), tf.pad(tf.gather(c, keep), pad),
                tf.pad(tf.gather(k, keep), pad, constant_values=-1), count)

    signature = (tf.TensorSpec([max_detections, 4], tf.float32), tf.TensorSpec([max_detections], tf.float32),
                 tf.TensorSpec([max_detections], tf.int64), tf.TensorSpec([], tf.int32))
    return tf.map_fn(one, (tf.cast(boxes, tf.float32), conf, cls), fn_output_signature=signature)


class _LazyKcvRetinaNet:
    """Stands in for KcvRetinaNet in Keras's registry until keras-cv is imported, so
    `keras.saving.load_model("retinanet.keras")` works after a plain `import kcv`."""

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        return model_class().from_config(config)


keras.saving.get_custom_objects().setdefault(_REGISTERED_NAME, _LazyKcvRetinaNet)


def __getattr__(name: str) -> Any:
    if name == "KcvRetinaNet":
        return model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_none(weights: Any) -> bool:
    return weights is None or (isinstance(weights, str) and weights.lower() in ("", "none"))


@register("retinanet")
def retinanet(num_classes: int = 1, input_shape: Sequence[int] = (128, 128, 3), seed: int | None = None,
              depth: int = 18, head_width: int = 64, head_convs: int = 2,
              anchor_sizes: Sequence[float] = DEFAULT_ANCHOR_SIZES, weights: str | None = None,
              pyramid_width: int | None = None, bn_momentum: float = DEFAULT_BN_MOMENTUM):
    """RetinaNet (a `keras_cv.models.RetinaNet`, uncompiled); `model.compile(optimizer=...)` trains it.

    Args:
        num_classes: object classes (no background class); bananas: 1.
        input_shape: (H, W, 3); H, W >= 32. Boxes are pixels of this size.
        seed: initializer seed (None: random); the same seed gives the same initial weights.
        depth: ResNet depth of the backbone: 18, 34 or 50 (random init, never downloaded).
        head_width, head_convs: channels and 3x3 convs of the shared class and box subnets
            (the paper: 256 and 4).
        anchor_sizes: the base anchor size in pixels at P3..P7 (strides 8..128).
        weights: None / "none" (random) or a local `.weights.h5` file from `model.save_weights`.
        pyramid_width: feature-pyramid channels (default: head_width).
        bn_momentum: the backbone's batch-norm moving-average momentum (Keras convention; keras-cv's
            0.99 leaves the inference-mode statistics far from the batch statistics for hundreds of
            steps, see the module docstring).
    """
    if not _is_none(weights):
        path = os.fspath(weights)
        if not path.endswith(".weights.h5"):
            raise ValueError(f"retinanet: weights must be None or a .weights.h5 file, got {path!r}")
        if not os.path.isfile(path):
            raise ValueError(f"retinanet: weights file {path!r} does not exist")
    model = model_class()(num_classes=num_classes, input_shape=input_shape, depth=depth, head_width=head_width,
                          head_convs=head_convs, pyramid_width=pyramid_width, anchor_sizes=anchor_sizes, seed=seed,
                          bn_momentum=bn_momentum, name="retinanet")
    if not _is_none(weights):
        model.load_weights(path)
    return model
